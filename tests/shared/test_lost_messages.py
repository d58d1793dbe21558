"""Work whose message vanished is found within seconds, not after the 15-minute stale re-drive.

The relay runs with the default ``SEGMENTA_RELAY_STALE_AFTER_S`` (900 s): everything these
tests see recovered in under a minute was recovered by the broker watch.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import cast

import pytest
from redis import Redis
from sqlalchemy import Engine, text

from shared.broker_watch import UNACKED, UNACKED_INDEX
from shared.contracts import queue_for
from shared.db import session_scope
from tests.shared.test_reliable_delivery import (
    assert_exactly_once,
    enqueue_subjects,
    pool_children,
    scalar,
    start_relay,
)
from tests.support.probe import PROBE_TASK
from tests.support.servers import start_worker
from tests.support.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SUBJECTS = 1_000
RECOVERY_S = 60  # far below the 900 s stale re-drive; the watch itself needs ~10-20 s


@pytest.fixture
def watch_env(probe_env: dict[str, str]) -> dict[str, str]:
    return {**probe_env, "SEGMENTA_RELAY_STALE_AFTER_S": "900", "SEGMENTA_RELAY_LOST_AFTER_S": "3"}


def effects(engine: Engine) -> int:
    return scalar(engine, "SELECT count(*) FROM probe_effect")


def queued(redis: Redis, queue: str) -> int:
    return cast(int, redis.llen(queue))


def published(engine: Engine) -> int:
    return scalar(
        engine,
        f"SELECT count(*) FROM outbox WHERE task_name = '{PROBE_TASK}' "
        "AND published_at IS NOT NULL",
    )


def test_messages_lost_with_redis_data_are_published_again(
    watch_env: dict[str, str], engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    redis = Redis.from_url(redis_url)
    relay = start_relay(watch_env, tmp_path / "relay.log")
    worker = None
    try:
        enqueue_subjects(engine, list(range(1, SUBJECTS + 1)))
        wait_until(lambda: published(engine) == SUBJECTS, 30, "every row published")
        queue = queue_for(PROBE_TASK)
        assert queued(redis, queue) > 0
        redis.delete(queue, UNACKED, UNACKED_INDEX)  # Redis came back without its data
        lost_at = time.monotonic()
        worker = start_worker("tests.support.probe_worker", "ingest", watch_env, tmp_path / "w.log")
        wait_until(lambda: effects(engine) == SUBJECTS, RECOVERY_S, "every subject's effect")
        print(f"recovered {SUBJECTS} rows {time.monotonic() - lost_at:.1f} s after the loss")
        assert_exactly_once(engine, SUBJECTS)
    finally:
        relay.stop()
        if worker is not None:
            worker.stop()


def test_a_batch_held_by_a_killed_worker_is_done_without_waiting_for_the_visibility_timeout(
    watch_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    env = {**watch_env, "PROBE_SLOW_S": "0.01"}
    worker = start_worker("tests.support.probe_worker", "ingest", env, tmp_path / "w.log")
    relay = start_relay(env, tmp_path / "relay.log")
    try:
        wait_until(lambda: bool(pool_children(worker)), 30, "the worker's pool process")
        enqueue_subjects(engine, list(range(1, SUBJECTS + 1)))
        wait_until(lambda: effects(engine) > 0, 60, "work in progress")
        # The main process dies holding a delivered batch: kombu keeps that delivery in
        # its unacked hash until the visibility timeout (900 s) would restore it.
        for child in pool_children(worker):
            os.kill(child.pid, signal.SIGKILL)
        worker.proc.kill()
        worker.stop()
        killed_at = time.monotonic()
        worker = start_worker("tests.support.probe_worker", "ingest", env, tmp_path / "w2.log")
        wait_until(lambda: effects(engine) == SUBJECTS, RECOVERY_S + 30, "every subject's effect")
        print(f"all {SUBJECTS} done {time.monotonic() - killed_at:.1f} s after the kill")
        assert_exactly_once(engine, SUBJECTS)
    finally:
        relay.stop()
        worker.stop()


def test_a_queued_message_is_not_published_twice(
    watch_env: dict[str, str], engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    """Rows waiting in a queue nobody consumes yet are carried, so they are left alone."""
    redis = Redis.from_url(redis_url)
    queue = queue_for(PROBE_TASK)
    redis.delete(queue)
    relay = start_relay(watch_env, tmp_path / "relay.log")
    try:
        enqueue_subjects(engine, list(range(1, 201)))
        wait_until(lambda: published(engine) == 200, 30, "every row published")
        messages = queued(redis, queue)
        time.sleep(8)  # past the 3 s grace, a few watch passes
        assert queued(redis, queue) == messages
        with session_scope(engine) as session:
            counts = session.execute(
                text("SELECT max(publish_count) FROM outbox WHERE task_name = :t"),
                {"t": PROBE_TASK},
            ).scalar_one()
        assert counts == 1
    finally:
        relay.stop()
        redis.delete(queue)
        with session_scope(engine) as session:
            session.execute(text("DELETE FROM outbox WHERE task_name = :t"), {"t": PROBE_TASK})
