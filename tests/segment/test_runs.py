"""A segmentation run's owner and its long jobs, against the real database.

The jobs run through `shared.reliable.LongJobRunner` (what the Celery task calls), with
outbox rows as the relay would deliver them; no broker is needed to see what the runner
does with the run row and the outbox row.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from services.segment import tasks
from services.segment.segmentations import service
from services.segment.segmentations.runs import (
    SegmentationParams,
    SegmentationRequestInvalid,
    create_run,
    give_up,
)
from services.segment.segmentations.schemas import SegmentationCreate
from services.segment.settings import SegmentSettings
from services.segment.training.schedule import SCHEDULE, schedule_retrains
from shared.contracts import SEGMENT_TRAIN_SEGMENTATION
from shared.db import session_scope
from shared.models.tenancy import Tenant
from shared.reliable import LongJobRunner, Subject
from shared.runs import RunStatus
from tests.segment.builders import create_run as create_run_row

SETTINGS = SegmentSettings(
    segment_algorithm="gmm", segment_k=4, segment_seed=3, segment_sample_size=2_000
)
MAX_ATTEMPTS = 3


def new_tenant(engine: Engine, *, with_customer: bool = False) -> int:
    with session_scope(engine) as session:
        tenant = Tenant(name=f"runs-{uuid.uuid4().hex[:10]}")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        if with_customer:
            session.execute(
                text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, 'c')"),
                {"t": tenant.id},
            )
        return tenant.id


def one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).one_or_none()


def train_outbox_id(engine: Engine, run_id: int) -> int:
    row = one(
        engine,
        "SELECT id FROM outbox WHERE task_name = :task AND subject_id = :run",
        task=SEGMENT_TRAIN_SEGMENTATION,
        run=run_id,
    )
    return int(row.id)


def train_runner(engine: Engine) -> LongJobRunner:
    def job(db: Engine, subject: Subject) -> None:
        tasks.train(db, SETTINGS, subject)

    return LongJobRunner(engine, SEGMENT_TRAIN_SEGMENTATION, job, MAX_ATTEMPTS, give_up)


def test_the_api_and_the_schedule_resolve_the_same_parameters(engine: Engine) -> None:
    tenant_id = new_tenant(engine, with_customer=True)
    with session_scope(engine) as session:
        asked = service.request_segmentation(
            session,
            tenant_id=tenant_id,
            requested_by="analyst",
            body=SegmentationCreate(),
            settings=SETTINGS,
        )
    with session_scope(engine) as session:
        scheduled = schedule_retrains(
            session, SETTINGS.model_copy(update={"segment_retrain_every_s": 1})
        )
    params = {
        run_id: one(engine, "SELECT params FROM segmentation_run WHERE id = :r", r=run_id).params
        for run_id in (asked, *scheduled)
    }
    assert params[asked] == {
        "algorithm": "gmm",
        "k": 4,
        "feature_set": "v1",
        "seed": 3,
        "sample_size": 2_000,
        "promote": "auto",
        "requested_by": "analyst",
    }
    # The tenant had a run in flight (the API's), so the schedule made none for it; the
    # parameters a schedule would store are the same resolution.
    assert asked not in scheduled
    expected = SegmentationParams.resolve(SETTINGS, requested_by=SCHEDULE).stored()
    assert {**params[asked], "requested_by": SCHEDULE} == expected


def test_a_scheduled_run_stores_the_settings_defaults(engine: Engine) -> None:
    tenant_id = new_tenant(engine, with_customer=True)
    settings = SETTINGS.model_copy(update={"segment_retrain_every_s": 1})
    with session_scope(engine) as session:
        created = schedule_retrains(session, settings)
    run = one(
        engine,
        "SELECT id, params FROM segmentation_run WHERE tenant_id = :t",
        t=tenant_id,
    )
    assert run.id in created
    assert run.params == SegmentationParams.resolve(SETTINGS, requested_by=SCHEDULE).stored()


def test_a_density_algorithm_refuses_an_integer_k_wherever_asked() -> None:
    with pytest.raises(SegmentationRequestInvalid) as refused:
        SegmentationParams.resolve(SETTINGS, algorithm="hdbscan", k=4)
    assert refused.value.field == "k"
    assert SegmentationParams.resolve(SETTINGS, algorithm="dbscan").k == "auto"


def test_a_failing_training_fails_its_run_and_completes_its_outbox_row(engine: Engine) -> None:
    tenant_id = new_tenant(engine)  # no customers: nothing to segment
    with session_scope(engine) as session:
        run_id = create_run(
            session,
            tenant_id=tenant_id,
            params=SegmentationParams.resolve(SETTINGS),
            max_in_flight=SETTINGS.segment_max_runs_in_flight,
        )
    outbox_id = train_outbox_id(engine, run_id)
    train_runner(engine).run([outbox_id])
    run = one(
        engine, "SELECT status, error, finished_at FROM segmentation_run WHERE id = :r", r=run_id
    )
    assert run.status == RunStatus.FAILED
    assert "nothing to segment" in run.error
    assert run.finished_at is not None
    assert one(engine, "SELECT 1 FROM outbox WHERE id = :o", o=outbox_id) is None
    assert one(engine, "SELECT 1 FROM dead_letter WHERE subject_id = :r", r=run_id) is None


def test_a_redelivered_training_of_a_finished_run_changes_nothing(engine: Engine) -> None:
    tenant_id = new_tenant(engine)
    with session_scope(engine) as session:
        run_id = create_run_row(session, tenant_id=tenant_id).id  # succeeded
        assert run_id is not None
        session.execute(
            text("INSERT INTO outbox (tenant_id, task_name, subject_id) VALUES (:t, :n, :r)"),
            {"t": tenant_id, "n": SEGMENT_TRAIN_SEGMENTATION, "r": run_id},
        )
    before = one(engine, "SELECT * FROM segmentation_run WHERE id = :r", r=run_id)
    outbox_id = train_outbox_id(engine, run_id)
    train_runner(engine).run([outbox_id])
    assert one(engine, "SELECT * FROM segmentation_run WHERE id = :r", r=run_id) == before
    assert one(engine, "SELECT 1 FROM outbox WHERE id = :o", o=outbox_id) is None


def test_a_training_whose_worker_keeps_dying_ends_failed_and_dead_lettered(
    engine: Engine,
) -> None:
    tenant_id = new_tenant(engine)
    with session_scope(engine) as session:
        run_id = create_run(
            session,
            tenant_id=tenant_id,
            params=SegmentationParams.resolve(SETTINGS),
            max_in_flight=SETTINGS.segment_max_runs_in_flight,
        )
    outbox_id = train_outbox_id(engine, run_id)
    with session_scope(engine) as session:  # what MAX_ATTEMPTS killed workers leave
        session.execute(
            text("UPDATE outbox SET attempts = :a WHERE id = :o"),
            {"a": MAX_ATTEMPTS, "o": outbox_id},
        )
        session.execute(
            text("UPDATE segmentation_run SET status = 'running' WHERE id = :r"), {"r": run_id}
        )
    train_runner(engine).run([outbox_id])
    run = one(engine, "SELECT status, error FROM segmentation_run WHERE id = :r", r=run_id)
    assert (run.status, run.error) == (RunStatus.FAILED, f"its worker died {MAX_ATTEMPTS} times")
    assert one(engine, "SELECT 1 FROM outbox WHERE id = :o", o=outbox_id) is None
    dead = one(
        engine, "SELECT task_name, attempts FROM dead_letter WHERE subject_id = :r", r=run_id
    )
    assert tuple(dead) == (SEGMENT_TRAIN_SEGMENTATION, MAX_ATTEMPTS)


def test_a_training_of_a_busy_tenant_is_asked_for_again_later(engine: Engine) -> None:
    from services.segment.segmentations.runs import SEGMENTATION

    tenant_id = new_tenant(engine)
    with session_scope(engine) as session:
        run_id = create_run(
            session,
            tenant_id=tenant_id,
            params=SegmentationParams.resolve(SETTINGS),
            max_in_flight=SETTINGS.segment_max_runs_in_flight,
        )
    outbox_id = train_outbox_id(engine, run_id)
    with SEGMENTATION.single_runner(engine, tenant_id):  # another run of the tenant trains
        train_runner(engine).run([outbox_id])
    again = one(
        engine,
        "SELECT id, attempts, available_at > now() + interval '20 seconds' AS later "
        "FROM outbox WHERE task_name = :n AND subject_id = :r",
        n=SEGMENT_TRAIN_SEGMENTATION,
        r=run_id,
    )
    assert again.id != outbox_id
    assert (again.attempts, again.later) == (0, True)
    status = one(engine, "SELECT status FROM segmentation_run WHERE id = :r", r=run_id).status
    assert status == RunStatus.PENDING
