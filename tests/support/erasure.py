"""Erasure in tests: the workers that erase, waiting for a request, and a scan of Redis."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis import Redis
from sqlalchemy import Engine, text

from shared.db import session_scope
from tests.support.http import auth
from tests.support.servers import Process, service_queues, start_worker
from tests.support.stack import wait_until

# The services whose workers erase stores of their own (shared.erasure.WORKER_STORES).
ERASING_SERVICES = ("segment", "personalize")


@contextmanager
def erasing_workers(env: dict[str, str], logs: Path) -> Iterator[list[Process]]:
    """The outbox relay and the worker of every service that erases a store."""
    stack_env = {
        **env,
        "SEGMENTA_RELAY_STALE_AFTER_S": "5",
        "SEGMENTA_SEGMENT_RETRAIN_EVERY_S": "0",
    }
    processes = [Process([sys.executable, "-m", "shared.relay"], stack_env, logs / "relay.log")]
    for service in ERASING_SERVICES:
        log = logs / f"{service}-worker.log"
        queues = service_queues(service)
        processes.append(start_worker(f"services.{service}.worker", queues, stack_env, log))
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def erasure(client: httpx.Client, key: str, erasure_id: int) -> dict[str, Any]:
    response = client.get(f"/v1/erasures/{erasure_id}", headers=auth(key))
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def wait_for_erasure(
    client: httpx.Client, key: str, erasure_id: int, workers: list[Process], timeout: float = 90
) -> dict[str, Any]:
    try:
        wait_until(
            lambda: erasure(client, key, erasure_id)["status"] == "completed",
            timeout,
            f"erasure {erasure_id} to complete",
        )
    except AssertionError as exc:
        logs = "\n".join(process.output()[-3000:] for process in workers)
        state = erasure(client, key, erasure_id)
        raise AssertionError(f"{exc}: {state}\n{logs}") from None
    return erasure(client, key, erasure_id)


def draw_map(engine: Engine, tenant_id: int, n_points: int) -> int:
    """A trained run of the tenant whose artifact holds a 2-D map sample; its id."""
    points = [[i / 10, -i / 10, "seg-1"] for i in range(n_points)]
    projection = {"method": "pca", "points": points, "pca_points": points, "n_customers": 9}
    with session_scope(engine) as session:
        run_id = session.execute(
            text(
                "INSERT INTO segmentation_run"
                " (tenant_id, status, algorithm, params, feature_set, seed, artifact)"
                " VALUES (:t, 'succeeded', 'kmeans', '{}', 'v1', 7, CAST(:a AS jsonb))"
                " RETURNING id"
            ),
            {"t": tenant_id, "a": orjson.dumps({"projection": projection}).decode()},
        ).scalar_one()
    return int(run_id)


def map_of(engine: Engine, run_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        artifact = conn.execute(
            text("SELECT artifact FROM segmentation_run WHERE id = :r"), {"r": run_id}
        ).scalar_one()
    projection: dict[str, Any] = artifact["projection"]
    return projection


def _values(client: Any, key: bytes) -> list[bytes]:  # redis-py types async and sync as one
    kind = client.type(key)
    if kind == b"string":
        return [client.get(key) or b""]
    if kind == b"hash":
        return [b for pair in client.hgetall(key).items() for b in pair]
    if kind == b"list":
        return list(client.lrange(key, 0, -1))
    if kind == b"set":
        return list(client.smembers(key))
    if kind == b"zset":
        return list(client.zrange(key, 0, -1))
    return []


def redis_mentions(redis_url: str, needles: list[str]) -> list[str]:
    """Every Redis key whose name or value holds one of ``needles`` (case-insensitive)."""
    wanted = [needle.lower().encode() for needle in needles]
    found = []
    with Redis.from_url(redis_url) as client:
        for key in client.scan_iter(count=1_000):
            text_ = b" ".join([key, *_values(client, key)]).lower()
            if any(needle in text_ for needle in wanted):
                found.append(key.decode(errors="replace"))
    return found
