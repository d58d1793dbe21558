"""The segment workers for real: a demo shop goes in through the ingest API, a run is
trained, activated and explained, and new activity re-assigns a customer, also while
another tenant's trainings occupy the runs worker.

Two worker processes, as deployed: one consumes the real-time queue (``segment``), one
the long jobs' queue (``segment.runs``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from segmenta.client import upload
from segmenta.demo.generate import generate
from services.segment.segmentations.runs import SEGMENTATION, SegmentationParams, create_run
from services.segment.settings import SegmentSettings
from services.segment.training.schedule import schedule_retrains
from shared.auth import create_api_key
from shared.contracts import SEGMENT_TRAIN_SEGMENTATION, queue_for
from shared.db import session_scope
from shared.runs import RunBusyError
from tests.conftest import MakeKey
from tests.support.http import tenant_of
from tests.support.servers import start_worker
from tests.support.stack import ServiceStack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
RUNS_QUEUE = queue_for(SEGMENT_TRAIN_SEGMENTATION)
KINDS = ("customers", "products", "orders", "events", "reviews", "transcripts")


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


@pytest.fixture(scope="module")
def segment_stack(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceStack]:
    stack_env = {
        **env,
        "SEGMENTA_RELAY_STALE_AFTER_S": "5",
        "SEGMENTA_SEGMENT_RETRAIN_EVERY_S": "0",
    }
    logs = tmp_path_factory.mktemp("segment")
    stack = ServiceStack("segment", stack_env, logs)
    runs = start_worker("services.segment.worker", RUNS_QUEUE, stack_env, logs / "runs.log")
    yield stack
    runs.stop()
    stack.stop()


def worker_logs(stack: ServiceStack) -> str:
    return f"{stack.worker_output()}\n--- runs worker ---\n{(stack.logs / 'runs.log').read_text()}"


@pytest.fixture(scope="module")
def shop(api: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A demo shop of 400 customers, loaded through the ingest API; its key and files."""
    with session_scope(engine) as session:
        key = create_api_key(
            session, client="shop", scopes=["ingest:write"], tenant=f"shop-{uuid.uuid4().hex[:8]}"
        ).key
    data = tmp_path_factory.mktemp("shop")
    generate(400, 11, data)
    for kind in KINDS:
        upload(api, key, kind, data / f"{kind}.jsonl", quiet=True)
    return key, data


def start_run(engine: Engine, tenant_id: int, **params: Any) -> int:
    resolved = SegmentationParams.resolve(SegmentSettings(), seed=7, **params)
    with session_scope(engine) as session:
        return create_run(session, tenant_id=tenant_id, params=resolved, max_in_flight=3)


def test_a_run_trains_activates_and_explains_the_shop(
    segment_stack: ServiceStack, shop: tuple[str, Path], engine: Engine
) -> None:
    key, _ = shop
    tenant_id = tenant_of(engine, key)
    run_id = start_run(engine, tenant_id, k=5, promote="always")
    status = "SELECT status, active, error FROM segmentation_run WHERE id = :r"
    wait_until(
        lambda: rows(engine, status, r=run_id)[0][:2] == ("succeeded", True),
        180,
        f"run {run_id} to succeed",
        logs=lambda: f"run: {rows(engine, status, r=run_id)}\n{worker_logs(segment_stack)}",
    )
    members = rows(
        engine,
        "SELECT count(*), count(DISTINCT segment_key) FROM segment_membership "
        "WHERE tenant_id = :t AND run_id = :r",
        t=tenant_id,
        r=run_id,
    )[0]
    assert members == (400, 5)
    segments = rows(
        engine,
        "SELECT key, name, size, rules->>'text', stats->>'clv_share' "
        "FROM segment WHERE run_id = :r",
        r=run_id,
    )
    assert sum(s.size for s in segments) == 400
    assert len({s.name for s in segments}) == 5  # every segment has its own name
    assert all(s[3] for s in segments)  # and a readable surrogate rule
    versions = rows(
        engine,
        "SELECT DISTINCT rules->>'version', profile->>'version', stats->>'version' "
        "FROM segment WHERE run_id = :r",
        r=run_id,
    )
    assert [tuple(v) for v in versions] == [("1", "1", "1")]  # stored as their contracts
    scored = rows(
        engine, "SELECT count(*) FROM customer_score WHERE tenant_id = :t AND clv > 0", t=tenant_id
    )[0][0]
    assert scored > 200  # most demo customers came back to buy
    ((metrics, artifact),) = rows(
        engine, "SELECT metrics, artifact FROM segmentation_run WHERE id = :r", r=run_id
    )
    assert metrics["silhouette"] > 0
    assert metrics["surrogate_fidelity"] > 0.7
    assert len(artifact["projection"]["points"]) > 100
    history = rows(engine, "SELECT count(*) FROM membership_history WHERE run_id = :r", r=run_id)
    assert history[0][0] == 400  # everyone entered a segment, with the reason
    ruled = rows(
        engine,
        "SELECT count(*) FROM membership_history WHERE run_id = :r AND reason->>'rule' <> ''",
        r=run_id,
    )
    assert ruled[0][0] == 400  # and the rule of the segment they entered
    # personalize hears of the new segmentation once, not once per customer (what it was
    # told earlier, of each customer as ingest stored them, is not the activation's).
    told = rows(
        engine,
        "SELECT task_name, subject_id FROM outbox WHERE tenant_id = :t AND task_name LIKE "
        "'personalize.%' AND created_at >= (SELECT started_at FROM segmentation_run "
        "WHERE id = :r)",
        t=tenant_id,
        r=run_id,
    )
    assert [tuple(row) for row in told] == [("personalize.refresh_segmentation", run_id)]


def test_a_new_order_refreshes_the_customers_features_within_seconds(
    segment_stack: ServiceStack, shop: tuple[str, Path], engine: Engine, api: str
) -> None:
    key, _ = shop
    tenant_id = tenant_of(engine, key)
    features = (
        "SELECT f.feature_values, f.updated_at FROM customer_features f "
        "JOIN customer c ON c.id = f.customer_pk WHERE c.tenant_id = :t AND c.customer_id = :c"
    )
    wait_until(
        lambda: bool(
            rows(
                engine,
                "SELECT 1 FROM segmentation_run WHERE tenant_id = :t AND active",
                t=tenant_id,
            )
        ),
        240,
        "an active run",
    )
    before = rows(engine, features, t=tenant_id, c="c-000001")[0]
    order = {
        "order_id": f"o-new-{uuid.uuid4().hex[:6]}",
        "customer_id": "c-000001",
        "placed_at": "2026-11-30T10:00:00Z",
        "currency": "EUR",
        "total": 999.0,
        "lines": [{"product_id": "p-0001", "quantity": 1, "unit_price": 999.0}],
    }
    response = httpx.post(
        f"{api}/v1/orders", json=order, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.json()["accepted"] == 1
    wait_until(
        lambda: rows(engine, features, t=tenant_id, c="c-000001")[0][1] > before[1],
        30,
        "the refreshed features",
        logs=lambda: worker_logs(segment_stack),
    )
    after = rows(engine, features, t=tenant_id, c="c-000001")[0]
    assert after[0] != before[0]  # the order counts: frequency and spend went up
    changes = rows(
        engine,
        "SELECT h.reason FROM membership_history h JOIN customer c ON c.id = h.customer_pk "
        "WHERE c.tenant_id = :t AND c.customer_id = 'c-000001' AND h.reason->>'trigger' = "
        "'activity'",
        t=tenant_id,
    )
    for (reason,) in changes:  # a move is explained by the rule of the segment entered
        assert reason["rule"]
        assert isinstance(reason["rule_holds"], bool)


def place_order(api: str, key: str, customer_id: str) -> None:
    order = {
        "order_id": f"o-new-{uuid.uuid4().hex[:6]}",
        "customer_id": customer_id,
        "placed_at": "2026-11-30T10:00:00Z",
        "currency": "EUR",
        "total": 120.0,
        "lines": [{"product_id": "p-0001", "quantity": 1, "unit_price": 120.0}],
    }
    response = httpx.post(
        f"{api}/v1/orders", json=order, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.json()["accepted"] == 1


def test_another_tenants_queued_trainings_do_not_delay_a_refresh(
    segment_stack: ServiceStack,
    shop: tuple[str, Path],
    engine: Engine,
    api: str,
    make_key: MakeKey,
) -> None:
    key, _ = shop
    tenant_id = tenant_of(engine, key)
    hogs = [tenant_of(engine, make_key("admin")) for _ in range(3)]
    features = (
        "SELECT f.updated_at FROM customer_features f JOIN customer c ON c.id = f.customer_pk "
        "WHERE c.tenant_id = :t AND c.customer_id = 'c-000002'"
    )
    wait_until(lambda: bool(rows(engine, features, t=tenant_id)), 120, "the shop's features")
    before = rows(engine, features, t=tenant_id)[0][0]
    with session_scope(engine) as session:
        for hog in hogs:
            session.execute(
                text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, 'hog')"),
                {"t": hog},
            )
    in_flight = "SELECT count(*) FROM segmentation_run WHERE id = ANY(:ids) AND status = ANY(:s)"
    waiting = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    # The hogs' trainings hold the runs worker for as long as this transaction lasts
    # (an hour-long training, in short): their features need the customer row locked here.
    with engine.connect() as holder:
        holder.execute(
            text("SELECT id FROM customer WHERE tenant_id = ANY(:hogs) FOR UPDATE"),
            {"hogs": hogs},
        )
        queued = [start_run(engine, hog) for hog in hogs for _ in range(3)]
        wait_until(
            lambda: rows(engine, waiting)[0][0] > 0,
            60,
            "the runs worker to start a training",
            logs=lambda: worker_logs(segment_stack),
        )
        place_order(api, key, "c-000002")
        wait_until(
            lambda: rows(engine, features, t=tenant_id)[0][0] > before,
            30,
            "the refreshed features",
            logs=lambda: worker_logs(segment_stack),
        )
        pending = rows(engine, in_flight, ids=queued, s=["pending", "running"])[0][0]
        assert pending == len(queued)  # the refresh did not wait for any of them
        holder.rollback()
    # Released, the hogs' trainings run (and fail: their tenants have no customers).
    wait_until(
        lambda: rows(engine, in_flight, ids=queued, s=["pending", "running"])[0][0] == 0,
        180,
        "the queued trainings to end",
        logs=lambda: worker_logs(segment_stack),
    )


def test_one_run_per_tenant_trains_at_a_time_and_a_killed_holder_frees_the_lock(
    engine: Engine,
) -> None:
    tenant_id = 10**9 + uuid.uuid4().int % 10**6  # a lock key; no rows needed
    with (
        SEGMENTATION.single_runner(engine, tenant_id),
        pytest.raises(RunBusyError),
        SEGMENTATION.single_runner(engine, tenant_id),
    ):
        pass
    holder = engine.connect()  # a worker that holds the lock, then dies
    holder.execute(text("SELECT pg_advisory_lock(:c, :t)"), {"c": 0x5E6, "t": tenant_id})
    pid = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with pytest.raises(RunBusyError), SEGMENTATION.single_runner(engine, tenant_id):
        pass
    with engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    holder.invalidate()

    def free() -> bool:  # the server ends the killed session, and its lock, within moments
        try:
            with SEGMENTATION.single_runner(engine, tenant_id):
                return True
        except RunBusyError:
            return False

    wait_until(free, 10, "the killed holder's lock to be released")


def test_concurrent_schedulers_create_each_due_run_once(engine: Engine, make_key: MakeKey) -> None:
    key = make_key("ingest:write")
    tenant_id = tenant_of(engine, key)
    with session_scope(engine) as session:
        session.execute(
            text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, 'x')"), {"t": tenant_id}
        )
    settings = SegmentSettings(segment_retrain_every_s=3600)
    barrier = threading.Barrier(4)
    created: list[list[int]] = []

    def schedule() -> None:
        with session_scope(engine) as session:
            barrier.wait()
            created.append(schedule_retrains(session, settings))

    threads = [threading.Thread(target=schedule) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = rows(engine, "SELECT count(*) FROM segmentation_run WHERE tenant_id = :t", t=tenant_id)
    assert runs[0][0] == 1
