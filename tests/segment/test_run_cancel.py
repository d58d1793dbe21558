"""Cancelling prediction and anomaly runs through the segment API, as segmentation runs are
cancelled (`tests.segment.test_run_limits`): a pending run at once, a running one at its
next stage boundary, a finished one never (409), another tenant's not at all (404).

The API is a real process; the runs go through `shared.reliable.LongJobRunner` (what the
Celery task calls) in a thread of the test, so the test can hold a run in its first
stage (a lock on ``orders``, which both kinds read first) while it cancels it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from services.segment.anomalies import runs as anomaly_runs
from services.segment.anomalies.pipeline import detect_run
from services.segment.predictions import runs as prediction_runs
from services.segment.predictions.pipeline import train_prediction
from services.segment.settings import SegmentSettings
from shared.contracts import SEGMENT_DETECT_ANOMALIES, SEGMENT_TRAIN_PREDICTION
from shared.db import session_scope
from shared.reliable import LongJobRunner, Subject
from tests.conftest import MakeKey
from tests.support.http import auth, tenant_of
from tests.support.stack import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@dataclass(frozen=True)
class Kind:
    name: str
    path: str  # the runs' collection
    body: dict[str, Any]
    table: str
    results: str  # what a run that succeeds stores, by run_id
    task_name: str
    work: Callable[[Engine, SegmentSettings, int], None]
    give_up: Any
    id_field: str
    next_progress: float  # the progress of the stage after the first


KINDS = [
    Kind(
        "prediction",
        "/v1/predictions",
        {"model": "churn"},
        "prediction_run",
        "prediction_score",
        SEGMENT_TRAIN_PREDICTION,
        train_prediction,
        prediction_runs.give_up,
        "prediction_id",
        0.3,
    ),
    Kind(
        "anomaly",
        "/v1/anomalies/runs",
        {},
        "anomaly_run",
        "anomaly_flag",
        SEGMENT_DETECT_ANOMALIES,
        detect_run,
        anomaly_runs.give_up,
        "run_id",
        0.3,
    ),
]


def one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).one_or_none()


def run_row(engine: Engine, kind: Kind, run_id: int) -> Any:
    return one(engine, f"SELECT * FROM {kind.table} WHERE id = :r", r=run_id)


def queued(engine: Engine, kind: Kind, run_id: int) -> bool:
    sql = "SELECT 1 FROM outbox WHERE task_name = :n AND subject_id = :r"
    return one(engine, sql, n=kind.task_name, r=run_id) is not None


def work_in_thread(engine: Engine, kind: Kind, run_id: int) -> threading.Thread:
    """The run's job, as the runs worker does it, in a thread of the test."""
    sql = "SELECT id FROM outbox WHERE task_name = :n AND subject_id = :r"
    outbox = one(engine, sql, n=kind.task_name, r=run_id)

    def job(db: Engine, subject: Subject) -> None:
        kind.work(db, SegmentSettings(), subject.subject_id)

    runner = LongJobRunner(engine, kind.task_name, job, 3, kind.give_up)
    thread = threading.Thread(target=runner.run, args=([outbox.id],))
    thread.start()
    return thread


def someone_waits_for_a_lock(engine: Engine) -> bool:
    waiting = one(
        engine,
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    return bool(waiting.n)


def ask(client: httpx.Client, kind: Kind, key: str) -> int:
    created = client.post(kind.path, json=kind.body, headers=auth(key))
    assert created.status_code == 202, created.text
    return int(created.json()["id"])


def cancel(client: httpx.Client, kind: Kind, key: str, run_id: int) -> httpx.Response:
    return client.post(f"{kind.path}/{run_id}/cancel", headers=auth(key))


def with_orders(engine: Engine, tenant_id: int, customers: int = 5) -> None:
    with session_scope(engine) as session:
        for n in range(customers):
            pk = session.execute(
                text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, :c) RETURNING id"),
                {"t": tenant_id, "c": f"c-{n}"},
            ).scalar_one()
            session.execute(
                text(
                    "INSERT INTO orders (tenant_id, order_id, customer_pk, placed_at, currency,"
                    " total) VALUES (:t, :o, :c, now() - interval '200 days', 'EUR', 10)"
                ),
                {"t": tenant_id, "o": f"o-{n}", "c": pk},
            )


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_a_pending_run_is_cancelled_at_once_and_never_works(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine, kind: Kind
) -> None:
    key = make_key("admin")
    run_id = ask(segment_client, kind, key)
    response = cancel(segment_client, kind, key, run_id)
    assert response.status_code == 202, response.text
    assert response.json()["id"] == run_id
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    work_in_thread(engine, kind, run_id).join(60)  # its message arrives afterwards
    run = run_row(engine, kind, run_id)
    assert (run.status, run.started_at) == ("cancelled", None)
    assert not queued(engine, kind, run_id)
    again = cancel(segment_client, kind, key, run_id)
    assert again.status_code == 409
    assert f"{kind.name} run {run_id} is cancelled already" in again.json()["detail"]
    assert again.json()["errors"] == [{"field": "status", "message": "cancelled"}]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_a_running_run_stops_at_its_next_stage_and_ends_cancelled(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine, kind: Kind
) -> None:
    key = make_key("admin")
    with_orders(engine, tenant_of(engine, key))
    run_id = ask(segment_client, kind, key)
    with engine.connect() as holder:  # holds the run in its first stage, reading orders
        holder.execute(text("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"))
        working = work_in_thread(engine, kind, run_id)
        wait_until(lambda: someone_waits_for_a_lock(engine), 30, "the run to wait")
        assert run_row(engine, kind, run_id).status == "running"
        response = cancel(segment_client, kind, key, run_id)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "cancelling"
        holder.rollback()
    working.join(60)
    assert not working.is_alive()
    run = run_row(engine, kind, run_id)
    assert (run.status, run.error) == ("cancelled", None)
    assert run.finished_at is not None
    assert run.progress < kind.next_progress  # it went no further than the stage it was in
    stored = one(engine, f"SELECT count(*) AS n FROM {kind.results} WHERE run_id = :r", r=run_id)
    assert stored.n == 0
    assert not queued(engine, kind, run_id)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_only_an_admin_cancels_and_only_an_unfinished_run_of_their_tenant(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine, kind: Kind
) -> None:
    tenant = f"cancel-{uuid.uuid4().hex[:10]}"
    admin, reader = make_key("admin", tenant=tenant), make_key("segments:read", tenant=tenant)
    for status in ("succeeded", "failed"):
        run_id = ask(segment_client, kind, admin)
        with session_scope(engine) as session:
            session.execute(
                text(f"UPDATE {kind.table} SET status = :s, finished_at = now() WHERE id = :r"),
                {"s": status, "r": run_id},
            )
        response = cancel(segment_client, kind, admin, run_id)
        assert response.status_code == 409, response.text
        assert f"is {status} already" in response.json()["detail"]
        assert run_row(engine, kind, run_id).status == status
    pending = ask(segment_client, kind, admin)
    refused = cancel(segment_client, kind, reader, pending)
    assert refused.status_code == 403
    assert "scope" in refused.json()["detail"]
    stranger = cancel(segment_client, kind, make_key("admin"), pending)
    assert stranger.status_code == 404
    assert stranger.json()["errors"] == [{"field": kind.id_field, "message": "not found"}]
    assert cancel(segment_client, kind, admin, 2**62).status_code == 404
    assert run_row(engine, kind, pending).status == "pending"
    assert cancel(segment_client, kind, admin, 0).status_code == 422
