"""One tenant cannot hog the runs: a limit of runs in flight, and cancellation.

The API is a real process; trainings run through `shared.reliable.LongJobRunner` (what
the Celery task calls) in a thread of the test, so the test can hold a training at a
stage while it cancels it.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from services.segment import tasks
from services.segment.segmentations import service
from services.segment.segmentations.runs import give_up
from services.segment.segmentations.schemas import SegmentationCreate
from services.segment.settings import SegmentSettings
from services.segment.training.schedule import schedule_retrains
from shared.contracts import SEGMENT_TRAIN_SEGMENTATION
from shared.db import session_scope
from shared.reliable import LongJobRunner, Subject
from shared.runs import RunLimitReached
from tests.conftest import MakeKey
from tests.segment.builders import create_run as create_run_row
from tests.segment.conftest import ShopKeys
from tests.support.http import auth, tenant_of
from tests.support.stack import wait_until

QUEUED_TRAINING = (
    f"SELECT 1 FROM outbox WHERE task_name = '{SEGMENT_TRAIN_SEGMENTATION}' AND subject_id = :r"
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LIMIT = SegmentSettings().segment_max_runs_in_flight


def one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).one_or_none()


def runs_of(engine: Engine, tenant_id: int) -> int:
    sql = "SELECT count(*) AS n FROM segmentation_run WHERE tenant_id = :t"
    return int(one(engine, sql, t=tenant_id).n)


def someone_waits_for_a_lock(engine: Engine) -> bool:
    waiting = one(
        engine,
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    return bool(waiting.n)


def train_in_thread(engine: Engine, run_id: int) -> threading.Thread:
    """The run's training, as the runs worker would do it, in a thread of the test."""
    outbox = one(
        engine,
        "SELECT id FROM outbox WHERE task_name = :n AND subject_id = :r",
        n=SEGMENT_TRAIN_SEGMENTATION,
        r=run_id,
    )

    def job(db: Engine, subject: Subject) -> None:
        tasks.train(db, SegmentSettings(), subject)

    runner = LongJobRunner(engine, SEGMENT_TRAIN_SEGMENTATION, job, 3, give_up)
    thread = threading.Thread(target=runner.run, args=([outbox.id],))
    thread.start()
    return thread


def test_a_tenant_at_its_limit_of_runs_in_flight_is_answered_429(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("admin")
    tenant_id = tenant_of(engine, key)
    accepted = [
        segment_client.post("/v1/segmentations", json={}, headers=auth(key)) for _ in range(LIMIT)
    ]
    assert [r.status_code for r in accepted] == [202] * LIMIT
    refused = segment_client.post("/v1/segmentations", json={}, headers=auth(key))
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert f"at most {LIMIT} segmentation runs" in refused.json()["detail"]
    assert "segment_max_runs_in_flight" in refused.json()["detail"]
    assert runs_of(engine, tenant_id) == LIMIT
    # Another tenant is not held back by this one's runs.
    other = segment_client.post("/v1/segmentations", json={}, headers=auth(make_key("admin")))
    assert other.status_code == 202
    # A cancelled run frees its place.
    first = accepted[0].json()["id"]
    assert segment_client.post(f"/v1/segmentations/{first}/cancel", headers=auth(key)).is_success
    again = segment_client.post("/v1/segmentations", json={}, headers=auth(key))
    assert again.status_code == 202


def test_requests_at_the_same_moment_cannot_pass_the_limit_together(
    engine: Engine, make_key: MakeKey
) -> None:
    tenant_id = tenant_of(engine, make_key("admin"))
    barrier = threading.Barrier(LIMIT + 4)
    outcomes: list[str] = []

    def ask() -> None:
        try:
            with session_scope(engine) as session:
                barrier.wait()
                service.request_segmentation(
                    session,
                    tenant_id=tenant_id,
                    requested_by="analyst",
                    body=SegmentationCreate(),
                    settings=SegmentSettings(),
                )
            outcomes.append("created")
        except RunLimitReached:
            outcomes.append("refused")

    threads = [threading.Thread(target=ask) for _ in range(LIMIT + 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] * LIMIT + ["refused"] * 4
    assert runs_of(engine, tenant_id) == LIMIT


def test_a_pending_run_is_cancelled_at_once_and_never_trains(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("admin")
    run_id = segment_client.post("/v1/segmentations", json={}, headers=auth(key)).json()["id"]
    response = segment_client.post(f"/v1/segmentations/{run_id}/cancel", headers=auth(key))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    train_in_thread(engine, run_id).join(60)  # its training message arrives afterwards
    run = one(engine, "SELECT status, started_at FROM segmentation_run WHERE id = :r", r=run_id)
    assert tuple(run) == ("cancelled", None)
    assert one(engine, QUEUED_TRAINING, r=run_id) is None
    again = segment_client.post(f"/v1/segmentations/{run_id}/cancel", headers=auth(key))
    assert again.status_code == 409
    assert "cancelled already" in again.json()["detail"]


def test_a_running_run_stops_at_its_next_stage_and_ends_cancelled(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("admin")
    tenant_id = tenant_of(engine, key)
    with session_scope(engine) as session:
        for n in range(5):
            session.execute(
                text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, :c)"),
                {"t": tenant_id, "c": f"c-{n}"},
            )
    run_id = segment_client.post("/v1/segmentations", json={}, headers=auth(key)).json()["id"]
    with engine.connect() as holder:  # holds the training in its features stage
        holder.execute(text("LOCK TABLE customer_features IN EXCLUSIVE MODE"))
        training = train_in_thread(engine, run_id)
        wait_until(lambda: someone_waits_for_a_lock(engine), 30, "the training to wait")
        response = segment_client.post(f"/v1/segmentations/{run_id}/cancel", headers=auth(key))
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "cancelling"
        holder.rollback()
    training.join(60)
    assert not training.is_alive()
    run = one(
        engine,
        "SELECT status, error, finished_at, progress, metrics FROM segmentation_run WHERE id = :r",
        r=run_id,
    )
    assert (run.status, run.error) == ("cancelled", None)
    assert run.finished_at is not None
    assert run.progress < 0.4  # it went no further than the stage it was in
    assert run.metrics["stage"] == "started"
    assert one(engine, "SELECT 1 FROM segment WHERE run_id = :r", r=run_id) is None
    assert one(engine, QUEUED_TRAINING, r=run_id) is None


def test_only_an_admin_cancels_and_only_an_unfinished_run_of_their_tenant(
    segment_client: httpx.Client, shop: ShopKeys, make_key: MakeKey, engine: Engine
) -> None:
    tenant_id = shop.shop.tenant_id
    with session_scope(engine) as session:
        failed = create_run_row(session, tenant_id=tenant_id, status="failed", error="boom")
    for run_id, status in ((shop.shop.run_id, "succeeded"), (failed.id, "failed")):
        response = segment_client.post(
            f"/v1/segmentations/{run_id}/cancel", headers=auth(shop.admin)
        )
        assert response.status_code == 409
        assert f"is {status} already" in response.json()["detail"]
    path = f"/v1/segmentations/{shop.shop.run_id}/cancel"
    assert segment_client.post(path, headers=auth(shop.reader)).status_code == 403
    stranger = segment_client.post(path, headers=auth(make_key("admin")))
    assert stranger.status_code == 404
    status = one(engine, "SELECT status FROM segmentation_run WHERE id = :r", r=shop.shop.run_id)
    assert status.status == "succeeded"


def test_the_schedule_creates_no_run_for_a_tenant_that_reached_its_limit_meanwhile(
    engine: Engine, make_key: MakeKey
) -> None:
    tenant_id = tenant_of(engine, make_key("admin"))
    with session_scope(engine) as session:
        session.execute(
            text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, :c)"),
            {"t": tenant_id, "c": f"c-{uuid.uuid4().hex[:6]}"},
        )
    settings = SegmentSettings(segment_retrain_every_s=1)
    asked, commit = threading.Event(), threading.Event()
    scheduled: list[int] = []

    def api_fills_the_limit() -> None:  # an admin's requests, not committed yet
        with session_scope(engine) as session:
            for _ in range(LIMIT):
                service.request_segmentation(
                    session,
                    tenant_id=tenant_id,
                    requested_by="analyst",
                    body=SegmentationCreate(),
                    settings=settings,
                )
            asked.set()
            commit.wait(30)

    def schedule() -> None:
        with session_scope(engine) as session:
            scheduled.extend(schedule_retrains(session, settings))

    api = threading.Thread(target=api_fills_the_limit)
    api.start()
    asked.wait(30)
    scheduler = threading.Thread(target=schedule)
    scheduler.start()  # it sees no run of the tenant yet, and waits for its admission
    wait_until(lambda: someone_waits_for_a_lock(engine), 30, "the scheduler to wait")
    commit.set()
    api.join(30)
    scheduler.join(30)
    assert runs_of(engine, tenant_id) == LIMIT
    mine = one(
        engine,
        "SELECT count(*) AS n FROM segmentation_run WHERE tenant_id = :t AND id = ANY(:ids)",
        t=tenant_id,
        ids=scheduled or [0],
    )
    assert mine.n == 0
