"""An anomaly run worked in-process over rows in Postgres: what it flags, what it does not
read (nothing after ``as_of``), and a change seen again by the next run is not news."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text

from services.segment.anomalies.params import AnomalyParams
from services.segment.anomalies.pipeline import detect_run
from services.segment.anomalies.runs import create_run
from services.segment.settings import SegmentSettings
from shared.db import session_scope
from shared.models import Event, Tenant
from shared.settings import Settings
from tests.segment.builders import create_customer

pytestmark = pytest.mark.integration
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def _views(customer_pk: int, tenant_id: int, times: list[datetime]) -> list[dict[str, Any]]:
    return [
        {
            "tenant_id": tenant_id,
            "event_id": f"e-{uuid.uuid4().hex}",
            "customer_pk": customer_pk,
            "type": "page_view",
            "occurred_at": at,
            "channel": "web",
            "properties": {},
        }
        for at in times
    ]


@pytest.fixture
def shop(engine: Engine) -> tuple[int, dict[str, int]]:
    """Three customers with a year of a few page views a week: ``bot`` also had 200 in
    twenty minutes five days before ``AS_OF``, ``later`` the same burst a day after it."""
    steady = [AS_OF - timedelta(days=day, hours=3) for day in range(2, 390, 2)]
    burst = [AS_OF - timedelta(days=5) + timedelta(seconds=6 * i) for i in range(200)]
    after = [AS_OF + timedelta(days=1) + timedelta(seconds=6 * i) for i in range(200)]
    with session_scope(engine) as session:
        tenant = Tenant(name=f"anom-pipeline-{uuid.uuid4().hex[:10]}")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        pks = {}
        for name, extra in (("steady", []), ("bot", burst), ("later", after)):
            customer = create_customer(
                session, tenant_id=tenant.id, signup_at=AS_OF - timedelta(days=400)
            )
            assert customer.id is not None
            pks[name] = customer.id
            session.execute(insert(Event), _views(customer.id, tenant.id, steady + extra))
        return tenant.id, pks


def _run(engine: Engine, settings: Settings, tenant_id: int, as_of: datetime) -> int:
    with session_scope(engine) as session:
        run_id = create_run(
            session, tenant_id=tenant_id, params=AnomalyParams(as_of=as_of), max_in_flight=3
        )
    segment_settings = SegmentSettings(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        environment="test",
        secret_key=settings.secret_key,
    )
    detect_run(engine, segment_settings, run_id)
    return run_id


def _flags(engine: Engine, run_id: int) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT customer_pk, kind, reason FROM anomaly_flag WHERE run_id = :r"),
            {"r": run_id},
        )
        return sorted((int(pk), kind, reason) for pk, kind, reason in found)


def test_the_burst_is_flagged_and_nothing_after_as_of_is_read(
    engine: Engine, settings: Settings, shop: tuple[int, dict[str, int]]
) -> None:
    tenant_id, pks = shop
    run_id = _run(engine, settings, tenant_id, AS_OF)
    flags = _flags(engine, run_id)
    assert [(pk, kind) for pk, kind, _ in flags] == [(pks["bot"], "bot_burst")]
    assert "200 events within one hour" in flags[0][2]
    with engine.connect() as conn:
        status, metrics = conn.execute(
            text("SELECT status, metrics FROM anomaly_run WHERE id = :r"), {"r": run_id}
        ).one()
    assert status == "succeeded"
    assert metrics["customers"] == 3
    assert metrics["flags_by_kind"] == {"bot_burst": 1}


def test_the_next_days_run_does_not_flag_the_same_burst_again(
    engine: Engine, settings: Settings, shop: tuple[int, dict[str, int]]
) -> None:
    tenant_id, pks = shop
    first = _run(engine, settings, tenant_id, AS_OF)
    second = _run(engine, settings, tenant_id, AS_OF + timedelta(days=3))
    assert [(pk, kind) for pk, kind, _ in _flags(engine, first)] == [(pks["bot"], "bot_burst")]
    # Three days on, "later"'s burst is inside the window: news. "bot"'s is not.
    assert [(pk, kind) for pk, kind, _ in _flags(engine, second)] == [(pks["later"], "bot_burst")]
    with engine.connect() as conn:
        metrics = conn.execute(
            text("SELECT metrics FROM anomaly_run WHERE id = :r"), {"r": second}
        ).scalar_one()
    assert metrics["continuing"] == 1
