"""Real processes for the segment benchmark, and the realtime part's whole course.

The ingest API, the outbox relay and service workers are started as the tests start
them (`tests.support.servers`); the realtime part then loads a demo shop, has the worker
train and activate a run, and measures how fast orders reach the customers' features.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, text

from bench.segment_quality import load_shop
from bench.segment_realtime import (
    CpuTimes,
    FreshnessPoller,
    LoadOutcome,
    match,
    post_orders,
    wait_for_all,
)
from bench.segment_report import RealtimeFigures
from services.segment.features import get_feature_set
from shared.auth import create_api_key
from shared.contracts import SEGMENT_TRAIN_SEGMENTATION
from shared.db import create_db_engine, session_scope
from shared.outbox import enqueue
from shared.settings import PostgresSettings
from tests.support.http import tenant_of
from tests.support.servers import Process, service_queues, start_api, start_worker

RATE_LIMIT = 1_000_000_000  # per key and minute: the load must not be throttled
POLL_S = 0.1


@contextmanager
def running_stack(
    env: dict[str, str], tmp: Path, workers: list[str]
) -> Iterator[tuple[str, Engine]]:
    """The ingest API, the relay and a worker per service; the API's URL and an engine."""
    engine = create_db_engine(PostgresSettings(database_url=env["SEGMENTA_DATABASE_URL"]))
    with ExitStack() as stack:
        stack.callback(engine.dispose)
        api, url = start_api(env, tmp / "api.log")
        stack.callback(api.stop)
        relay = Process([sys.executable, "-m", "shared.relay"], env, tmp / "relay.log")
        stack.callback(relay.stop)
        for service in workers:
            log = tmp / f"{service}-worker.log"
            worker = start_worker(f"services.{service}.worker", service_queues(service), env, log)
            stack.callback(worker.stop)
        yield url, engine


def process_ids(tmp: Path) -> dict[str, list[int]]:
    """The stack's processes by role, found by their command lines."""
    import psutil

    roles = {
        "ingest API": "services.ingest.main",
        "relay": "shared.relay",
        "segment worker": "services.segment.worker",
    }
    found: dict[str, list[int]] = {role: [] for role in roles}
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        line = " ".join(proc.info.get("cmdline") or [])
        for role, needle in roles.items():
            if needle in line and proc.info.get("ppid") == os.getpid():
                found[role].append(proc.pid)
    found["load generator + poller"] = [os.getpid()]
    return found


def ingest_key(engine: Engine, label: str) -> str:
    with session_scope(engine) as session:
        return create_api_key(
            session,
            client="bench",
            scopes=["ingest:write"],
            tenant=f"bench-{label}-{uuid.uuid4().hex[:6]}",
            rate_limit_per_minute=RATE_LIMIT,
        ).key


def _scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def wait_for(condition: Callable[[], bool], limit_s: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if condition():
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {limit_s:.0f} s waiting for {what}")


def segment_backlog(engine: Engine, tenant_id: int) -> int:
    return int(
        _scalar(
            engine,
            "SELECT count(*) FROM outbox WHERE tenant_id = :t AND task_name LIKE 'segment.%'",
            t=tenant_id,
        )
    )


def train_active_run(engine: Engine, tenant_id: int) -> int:
    """A kmeans run trained and activated by the worker, as the API would ask for it."""
    with session_scope(engine) as session:
        run_id = session.execute(
            text(
                "INSERT INTO segmentation_run"
                " (tenant_id, status, algorithm, params, feature_set, seed)"
                " VALUES (:t, 'pending', 'kmeans', CAST(:p AS jsonb), 'v1', 7) RETURNING id"
            ),
            {"t": tenant_id, "p": orjson.dumps({"promote": "always"}).decode()},
        ).scalar_one()
        enqueue(
            session, tenant_id=tenant_id, task_name=SEGMENT_TRAIN_SEGMENTATION, subject_ids=[run_id]
        )
    wait_for(
        lambda: bool(
            _scalar(
                engine,
                "SELECT status = 'succeeded' AND active FROM segmentation_run WHERE id = :r",
                r=run_id,
            )
        ),
        600,
        f"run {run_id} to train and activate",
    )
    return int(run_id)


def customer_pks(engine: Engine, tenant_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT customer_id, id FROM customer WHERE tenant_id = :t"), {"t": tenant_id}
        ).all()
    return {str(cid): int(pk) for cid, pk in rows}


def order_counts(engine: Engine, tenant_id: int) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT customer_pk, count(*) FROM orders WHERE tenant_id = :t GROUP BY 1"),
            {"t": tenant_id},
        ).all()
    return {int(pk): int(n) for pk, n in rows}


def final_checks(
    engine: Engine, tenant_id: int, run_id: int, pks: list[int]
) -> tuple[int, int, int]:
    """(customers whose stored frequency differs from their orders, ordering customers
    without a membership of the run, dead letters of the tenant)."""
    index = get_feature_set("v1").names.index("frequency") + 1  # SQL arrays count from 1
    with engine.connect() as conn:
        mismatches = conn.execute(
            text(
                "SELECT count(*) FROM unnest(CAST(:pks AS bigint[])) AS c(pk)"
                " LEFT JOIN customer_features f ON f.customer_pk = c.pk AND f.feature_set = 'v1'"
                " WHERE f.feature_values[:i] IS DISTINCT FROM"
                " (SELECT count(*) FROM orders o WHERE o.customer_pk = c.pk)::float8"
            ),
            {"pks": pks, "i": index},
        ).scalar_one()
        missing = conn.execute(
            text(
                "SELECT count(*) FROM unnest(CAST(:pks AS bigint[])) AS c(pk)"
                " LEFT JOIN segment_membership m ON m.customer_pk = c.pk AND m.run_id = :r"
                " WHERE m.customer_pk IS NULL"
            ),
            {"pks": pks, "r": run_id},
        ).scalar_one()
        dead = conn.execute(
            text("SELECT count(*) FROM dead_letter WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar_one()
    return int(mismatches), int(missing), int(dead)


def worker_batches(tmp: Path, since_line: int) -> str:
    """Refresh tasks and customers per task, from the worker's log after ``since_line``."""
    log = tmp / "segment-worker.log"
    lines = log.read_text(errors="replace").splitlines()[since_line:] if log.exists() else []
    sizes = []
    for line in lines:
        if "refreshed " in line and " customers;" in line:
            try:
                sizes.append(int(line.split("refreshed ", 1)[1].split(" ", 1)[0]))
            except ValueError:
                continue
    if not sizes:
        return "-"
    return f"{len(sizes):,} tasks, {sum(sizes) / len(sizes):.1f} customers each (max {max(sizes)})"


def log_lines(tmp: Path) -> int:
    log = tmp / "segment-worker.log"
    return len(log.read_text(errors="replace").splitlines()) if log.exists() else 0


def realtime(
    url: str,
    env: dict[str, str],
    tmp: Path,
    *,
    customers: int,
    rate: float,
    batch: int,
    duration: float,
    connections: int,
    settle: Callable[[], None],
    log: Callable[[str], None],
) -> RealtimeFigures:
    env = {**env, "SEGMENTA_LOG_LEVEL": "INFO"}  # the worker logs each refresh's size
    with running_stack(env, tmp, ["segment"]) as (api, engine):
        key = ingest_key(engine, "realtime")
        tenant_id = tenant_of(engine, key)
        log(f"realtime: loading a {customers:,}-customer demo shop through the API")
        counts, _ = load_shop(api, key, engine, customers, tmp / "shop", log)
        waited = wait_for(lambda: segment_backlog(engine, tenant_id) == 0, 600, "first refresh")
        log(f"  initial features refreshed {waited:.0f} s after the load; training a run")
        run_id = train_active_run(engine, tenant_id)
        wait_for(lambda: segment_backlog(engine, tenant_id) == 0, 300, "activation")
        pks = customer_pks(engine, tenant_id)
        ids = sorted(pks)

        def load(duration: float, seed: int, first_order: int) -> LoadOutcome:
            return post_orders(
                api,
                key,
                rate=rate,
                batch=batch,
                duration=duration,
                connections=connections,
                customers=ids,
                products=counts["products"],
                seed=seed,
                first_order=first_order,
            )

        log("  warm-up: 3 s")
        load(3.0, 1, 0)
        wait_for(lambda: segment_backlog(engine, tenant_id) == 0, 300, "the warm-up to drain")
        settle()
        before = order_counts(engine, tenant_id)
        lines = log_lines(tmp)
        poller = FreshnessPoller(
            url, tenant_id, get_feature_set("v1").names.index("frequency"), POLL_S
        )
        poller.start()
        log(f"  measuring: {rate:.0f} orders/s in batches of {batch} for {duration:.0f} s")
        with CpuTimes(process_ids(tmp)) as cpu:
            outcome = load(duration, 2, 10_000_000)
        drain = wait_for_all(poller, outcome.acks, pks, before, limit_s=180)
        poller.stop()
        freshness = match(poller, outcome.acks, pks, before)
        ordered = sorted({pks[a.customer_id] for a in outcome.acks})
        mismatches, missing, dead = final_checks(engine, tenant_id, run_id, ordered)
        window = max(outcome.last_ack - outcome.first_send, 1e-9)
        figures = RealtimeFigures(
            customers=customers,
            rate=rate,
            batch=batch,
            connections=connections,
            duration=duration,
            sent=outcome.sent,
            accepted=len(outcome.acks),
            errors=outcome.errors,
            achieved_rate=len(outcome.acks) / window,
            late_starts=outcome.late_starts,
            freshness=freshness,
            max_backlog=max((n for _, n in poller.backlog), default=0),
            drain_s=None if drain is None else drain,
            frequency_mismatches=mismatches,
            missing_memberships=missing,
            dead_letters=dead,
            poll_s=POLL_S,
            cpu=cpu.cores,
            worker_batches=worker_batches(tmp, lines),
        )
    return figures
