"""Fixtures of the delivery tests: the probe worker's tables, emptied, and its settings."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from shared.db import session_scope
from tests.support.probe import PROBE_TASK, SCHEMA


@pytest.fixture
def probe_env(env: dict[str, str], engine: Engine) -> dict[str, str]:
    with session_scope(engine) as session:
        for statement in SCHEMA.strip().split(";\n"):
            session.execute(text(statement))
        session.execute(text("TRUNCATE probe_effect, probe_poison, probe_killer"))
        session.execute(text("DELETE FROM outbox WHERE task_name = :t"), {"t": PROBE_TASK})
        session.execute(text("DELETE FROM dead_letter WHERE task_name = :t"), {"t": PROBE_TASK})
        session.execute(text("INSERT INTO tenant (name) VALUES ('probe') ON CONFLICT DO NOTHING"))
    return {
        **env,
        "SEGMENTA_RELAY_STALE_AFTER_S": "5",
        "SEGMENTA_MAX_TASK_ATTEMPTS": "3",
        "SEGMENTA_RELAY_BATCH_SIZE": "100",
    }
