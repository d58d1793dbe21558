"""The schedule does not retrain a tenant whose records have not changed since its active
run was trained with the same parameters; it does once a record arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from services.segment.segmentations.runs import SegmentationParams
from services.segment.settings import SegmentSettings
from services.segment.training.fingerprint import data_fingerprint
from services.segment.training.schedule import SCHEDULE, schedule_retrains
from shared.db import session_scope
from tests.segment.builders import create_customer, create_run
from tests.segment.test_runs import new_tenant

SETTINGS = SegmentSettings(segment_retrain_every_s=60)


def test_an_unchanged_tenant_is_not_retrained_and_a_changed_one_is(engine: Engine) -> None:
    tenant_id = new_tenant(engine, with_customer=True)
    params = SegmentationParams.resolve(SETTINGS, requested_by=SCHEDULE)
    long_ago = datetime.now(UTC) - timedelta(days=2)
    with session_scope(engine) as session:
        fingerprint = data_fingerprint(session, tenant_id=tenant_id, params=params)
        create_run(
            session,
            tenant_id=tenant_id,
            active=True,
            params=params.stored(),
            metrics={"data_fingerprint": fingerprint},
            started_at=long_ago,
            finished_at=long_ago,
        )
    with session_scope(engine) as session:
        unchanged = schedule_retrains(session, SETTINGS)
    assert tenant_id not in _tenants(engine, unchanged)
    with session_scope(engine) as session:
        create_customer(session, tenant_id=tenant_id)
    with session_scope(engine) as session:
        changed = schedule_retrains(session, SETTINGS)
    assert tenant_id in _tenants(engine, changed)


def _tenants(engine: Engine, run_ids: list[int]) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT tenant_id FROM segmentation_run WHERE id = ANY(:ids)"), {"ids": run_ids}
        )
        return {int(row[0]) for row in rows}
