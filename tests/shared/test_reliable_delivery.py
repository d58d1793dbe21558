"""RELIABILITY.md's crash tests, with a real relay process and a real Celery worker.

Work is enqueued the way ingest does it (outbox rows committed with the data); the
probe worker's effects show whether anything was lost (a missing row) or done twice
(``hits`` above 1).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import Engine, text

from shared.db import session_scope
from shared.outbox import enqueue
from tests.support.probe import PROBE_TASK
from tests.support.servers import Process, start_worker
from tests.support.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SUBJECTS = 2_000


def probe_tenant(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM tenant WHERE name = 'probe'")).scalar_one())


def enqueue_subjects(engine: Engine, subject_ids: list[int]) -> None:
    with session_scope(engine) as session:
        enqueue(
            session, tenant_id=probe_tenant(engine), task_name=PROBE_TASK, subject_ids=subject_ids
        )


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def start_relay(env: dict[str, str], log: Path) -> Process:
    return Process([sys.executable, "-m", "shared.relay"], env, log)


def assert_exactly_once(engine: Engine, expected: int) -> None:
    assert scalar(engine, "SELECT count(*) FROM probe_effect") == expected
    assert scalar(engine, "SELECT coalesce(max(hits), 0) FROM probe_effect") == 1
    assert scalar(engine, f"SELECT count(*) FROM outbox WHERE task_name = '{PROBE_TASK}'") == 0


def pool_children(worker: Process) -> list[psutil.Process]:
    return psutil.Process(worker.proc.pid).children()


def test_work_committed_before_a_crash_is_published_by_the_relay_later(
    probe_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    # The API committed these rows and then the relay died before publishing them...
    enqueue_subjects(engine, list(range(1, SUBJECTS + 1)))
    # ...and these were claimed by a relay whose message never reached Redis.
    with session_scope(engine) as session:
        session.execute(
            text(
                "UPDATE outbox SET published_at = now() - interval '1 hour', publish_count = 1 "
                f"WHERE task_name = '{PROBE_TASK}' AND subject_id % 10 = 0"
            )
        )
    worker = start_worker("tests.support.probe_worker", "ingest", probe_env, tmp_path / "w.log")
    first = start_relay(probe_env, tmp_path / "relay1.log")
    try:
        time.sleep(1.0)
        first.proc.kill()  # and the relay crashes again, mid-stream
        first.stop()
        relay = start_relay(probe_env, tmp_path / "relay2.log")
        try:
            wait_until(
                lambda: scalar(engine, "SELECT count(*) FROM probe_effect") == SUBJECTS,
                120,
                "every subject's effect",
            )
            assert_exactly_once(engine, SUBJECTS)
        finally:
            relay.stop()
    finally:
        worker.stop()


def test_a_worker_sigkilled_mid_batch_loses_nothing_and_doubles_nothing(
    probe_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    env = {**probe_env, "PROBE_SLOW_S": "0.002"}
    worker = start_worker("tests.support.probe_worker", "ingest", env, tmp_path / "w.log")
    relay = start_relay(env, tmp_path / "relay.log")
    try:
        wait_until(lambda: bool(pool_children(worker)), 30, "the worker's pool process")
        enqueue_subjects(engine, list(range(1, SUBJECTS + 1)))
        kills = 0
        for _ in range(3):  # kill the pool process while it is inside a batch
            wait_until(
                lambda: (
                    scalar(engine, "SELECT count(*) FROM probe_effect") > 0
                    or scalar(engine, "SELECT count(*) FROM outbox WHERE attempts > 0") > 0
                ),
                60,
                "work in progress",
            )
            time.sleep(0.15)
            # Celery replaces a killed pool process: wait for its successor before the next.
            wait_until(lambda: bool(pool_children(worker)), 30, "the worker's pool process")
            for child in pool_children(worker):
                os.kill(child.pid, signal.SIGKILL)
                kills += 1
        # Then the whole worker dies; its unacknowledged batch comes back via the relay.
        worker.proc.kill()
        worker.stop()
        worker = start_worker("tests.support.probe_worker", "ingest", env, tmp_path / "w2.log")
        wait_until(
            lambda: scalar(engine, "SELECT count(*) FROM probe_effect") == SUBJECTS,
            180,
            "every subject's effect",
        )
        assert kills >= 3
        assert_exactly_once(engine, SUBJECTS)
        assert (
            scalar(engine, f"SELECT count(*) FROM dead_letter WHERE task_name = '{PROBE_TASK}'")
            == 0
        )
    finally:
        relay.stop()
        worker.stop()


def test_poison_and_process_killing_subjects_are_dead_lettered_and_the_rest_completes(
    probe_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    with session_scope(engine) as session:
        session.execute(text("INSERT INTO probe_poison VALUES (13)"))
        session.execute(text("INSERT INTO probe_killer VALUES (42)"))
    worker = start_worker("tests.support.probe_worker", "ingest", probe_env, tmp_path / "w.log")
    relay = start_relay(probe_env, tmp_path / "relay.log")
    try:
        enqueue_subjects(engine, list(range(1, 201)))
        wait_until(
            lambda: (
                scalar(engine, f"SELECT count(*) FROM outbox WHERE task_name = '{PROBE_TASK}'") == 0
            ),
            120,
            "the outbox to drain",
        )
        with engine.connect() as conn:
            dead = conn.execute(
                text(
                    "SELECT subject_id, attempts, reason FROM dead_letter "
                    f"WHERE task_name = '{PROBE_TASK}' ORDER BY subject_id"
                )
            ).all()
        assert [(s, a) for s, a, _ in dead] == [(13, 3), (42, 3)]
        assert "subject 13 is poison" in dead[0][2]
        assert "worker process died" in dead[1][2]
        assert scalar(engine, "SELECT count(*) FROM probe_effect") == 198
        assert scalar(engine, "SELECT coalesce(max(hits), 0) FROM probe_effect") == 1
    finally:
        relay.stop()
        worker.stop()
