"""An operator sees the work still owed: /readyz and /metrics show the outbox backlog."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.db import session_scope
from shared.outbox import enqueue
from tests.support.probe import PROBE_TASK

pytestmark = pytest.mark.e2e


def test_readyz_and_metrics_show_the_waiting_work_and_its_age(
    api: str, engine: Engine, probe_env: dict[str, str]
) -> None:
    with session_scope(engine) as session:
        tenant = session.execute(text("SELECT id FROM tenant WHERE name = 'probe'")).scalar_one()
        enqueue(session, tenant_id=tenant, task_name=PROBE_TASK, subject_ids=list(range(1, 51)))
    time.sleep(1.1)  # no relay runs here: the rows wait, and age
    try:
        ready = httpx.get(f"{api}/readyz", timeout=10).json()
        assert ready["backlog"]["waiting"] >= 50
        assert ready["backlog"]["oldest_age_s"] >= 1.0
        metrics = httpx.get(f"{api}/metrics", timeout=10).text
        waiting = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("segmenta_outbox_waiting ")
        )
        assert waiting >= 50
        assert "segmenta_dead_letters " in metrics
    finally:
        with session_scope(engine) as session:
            session.execute(text("DELETE FROM outbox WHERE task_name = :t"), {"t": PROBE_TASK})
