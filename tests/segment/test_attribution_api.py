"""``GET /v1/attribution`` through a real segment API process on real Postgres."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from shared.auth import Scope
from shared.db import session_scope
from shared.models import Event, Order
from tests.conftest import MakeKey
from tests.segment.builders import add_membership, create_customer, create_run, create_segment
from tests.support.http import auth, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW = {"from": "2026-02-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


def add_event(
    session: Session, tenant_id: int, customer_pk: int, at: datetime, channel: str, **extra: Any
) -> None:
    session.add(
        Event(
            tenant_id=tenant_id,
            event_id=uuid.uuid4().hex,
            customer_pk=customer_pk,
            type=extra.pop("type", "page_view"),
            occurred_at=at,
            channel=channel,
            properties=extra or None,
        )
    )


def add_order(session: Session, tenant_id: int, customer_pk: int, at: datetime, total: int) -> None:
    session.add(
        Order(
            tenant_id=tenant_id,
            order_id=uuid.uuid4().hex,
            customer_pk=customer_pk,
            placed_at=at,
            currency="EUR",
            total=Decimal(total),
        )
    )


def customer_pk(session: Session, tenant_id: int, customer_id: str) -> int:
    pk = create_customer(session, tenant_id=tenant_id, customer_id=customer_id).id
    assert pk is not None
    return pk


@dataclass(frozen=True)
class Journeys:
    reader: str
    tenant: str


@pytest.fixture
def journeys(engine: Engine, make_key: MakeKey) -> Journeys:
    """Customer a: email, web, order 100, app, order 50, then a paid-ads visit and no
    order. Customer b: one order with no touch. Customer c: a support contact (not a
    touch), then an order. Customers a and b are in segment s1 of the active run, c in s2."""
    tenant = f"attr-{uuid.uuid4().hex[:12]}"
    reader = make_key("segments:read", tenant=tenant)
    tenant_id = tenant_of(engine, reader)
    with session_scope(engine) as session:
        a, b, c = (customer_pk(session, tenant_id, name) for name in ("a", "b", "c"))
        add_event(session, tenant_id, a, day(1), "email", type="email_click")
        add_event(session, tenant_id, a, day(2), "web")
        add_order(session, tenant_id, a, day(3), 100)
        add_event(session, tenant_id, a, day(4), "app")
        add_order(session, tenant_id, a, day(5), 50)
        add_event(session, tenant_id, a, day(6), "web", utm_medium="CPC", utm_source="search")
        add_order(session, tenant_id, b, day(2), 70)
        add_event(session, tenant_id, c, day(1), "chat", type="support_contact")
        add_order(session, tenant_id, c, day(2), 30)
        run = create_run(session, tenant_id=tenant_id, active=True)
        assert run.id is not None
        for key, members in (("s1", (a, b)), ("s2", (c,))):
            create_segment(session, tenant_id=tenant_id, run_id=run.id, key=key)
            for pk in members:
                add_membership(session, tenant_id=tenant_id, customer_pk=pk, run_id=run.id, key=key)
    return Journeys(reader=reader, tenant=tenant)


def by_channel(body: dict[str, Any], what: str, model: str) -> dict[str, float]:
    return {c["channel"]: c[what][model] for c in body["channels"]}


def read(client: httpx.Client, key: str, **params: str) -> httpx.Response:
    return client.get("/v1/attribution", params=params, headers=auth(key))


def test_journeys_cut_at_orders_and_credited(
    segment_client: httpx.Client, journeys: Journeys
) -> None:
    response = read(segment_client, journeys.reader, **WINDOW)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"]) == ("2026-02-01T00:00:00Z", "2026-04-01T00:00:00Z")
    assert body["journeys"] == 3
    assert body["conversions"] == 2
    assert body["revenue"] == 150
    assert body["orders_without_touches"] == 2
    assert body["revenue_without_touches"] == 100
    assert by_channel(body, "conversions", "last_touch") == {
        "web": 1,
        "app": 1,
        "email": 0,
        "ads": 0,
    }
    assert by_channel(body, "revenue", "first_touch") == {
        "email": 100,
        "app": 50,
        "web": 0,
        "ads": 0,
    }
    assert by_channel(body, "revenue", "linear") == {"email": 50, "web": 50, "app": 50, "ads": 0}
    journeys_per_channel = {c["channel"]: c["journeys"] for c in body["channels"]}
    assert journeys_per_channel == {"email": 1, "web": 1, "app": 1, "ads": 1}
    for model in body["models"]:
        assert sum(by_channel(body, "conversions", model).values()) == pytest.approx(2), model
        assert sum(by_channel(body, "share", model).values()) == pytest.approx(1), model
    # The paid visit converted nothing: no model credits it.
    assert by_channel(body, "conversions", "markov")["ads"] == 0
    assert by_channel(body, "conversions", "shapley")["ads"] == 0


def test_window_and_segment_narrow_the_journeys(
    segment_client: httpx.Client, journeys: Journeys
) -> None:
    later = read(
        segment_client, journeys.reader, **{"from": "2026-03-04T12:00:00Z"}, to=WINDOW["to"]
    )
    body = later.json()
    assert (body["journeys"], body["conversions"], body["revenue"]) == (2, 1, 50)
    assert by_channel(body, "conversions", "last_touch") == {"app": 1, "ads": 0}

    s2 = read(segment_client, journeys.reader, **WINDOW, segment="s2").json()
    assert (s2["journeys"], s2["conversions"], s2["orders_without_touches"]) == (0, 0, 1)
    assert s2["channels"] == []
    s1 = read(segment_client, journeys.reader, **WINDOW, segment="s1").json()
    assert (s1["conversions"], s1["orders_without_touches"], s1["segment"]) == (2, 1, "s1")


def test_defaults_to_the_last_90_days(segment_client: httpx.Client, journeys: Journeys) -> None:
    body = read(segment_client, journeys.reader).json()
    end = datetime.fromisoformat(body["to"])
    assert abs(end - datetime.now(UTC)) < timedelta(minutes=5)
    assert end - datetime.fromisoformat(body["from"]) == timedelta(days=90)


@pytest.mark.parametrize("scope", [s.value for s in Scope])
def test_scope_matrix(
    segment_client: httpx.Client, journeys: Journeys, make_key: MakeKey, scope: str
) -> None:
    response = read(segment_client, make_key(scope, tenant=journeys.tenant), **WINDOW)
    if scope in {"admin", "segments:read"}:
        assert response.status_code == 200, response.text
        assert response.json()["conversions"] == 2
    else:
        assert response.status_code == 403, response.text
        assert "scope" in response.json()["detail"]


def test_no_key_is_401(segment_client: httpx.Client) -> None:
    response = segment_client.get("/v1/attribution")
    assert response.status_code == 401
    assert {e["field"] for e in response.json()["errors"]} == {"Authorization"}


def test_another_tenant_sees_none_of_it(
    segment_client: httpx.Client, journeys: Journeys, make_key: MakeKey
) -> None:
    other = make_key("segments:read")
    body = read(segment_client, other, **WINDOW).json()
    assert (body["journeys"], body["conversions"], body["orders_without_touches"]) == (0, 0, 0)
    assert body["channels"] == []
    # Its segment keys are not the other tenant's either.
    assert read(segment_client, other, **WINDOW, segment="s1").status_code == 404


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"from": "yesterday"}, 422, "from"),
        ({"to": "2026-13-01"}, 422, "to"),
        ({"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, 422, "to"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, 422, "to"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, 422, "from"),
        ({"segment": ""}, 422, "segment"),
        ({"segment": "x" * 33}, 422, "segment"),
        ({"segment": "a\x00b"}, 422, "segment"),
        ({"segment": "nope"}, 404, "segment"),
    ],
)
def test_malformed_and_unknown(
    segment_client: httpx.Client,
    journeys: Journeys,
    params: dict[str, str],
    status: int,
    field: str,
) -> None:
    response = read(segment_client, journeys.reader, **params)
    assert response.status_code == status, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
