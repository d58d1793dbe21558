"""The generic pieces of a model run: one runner per kind and tenant, guarded transitions."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import Column, DateTime, Engine, Float, Integer, MetaData, String, Table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session

from shared.db import session_scope
from shared.runs import (
    ArtifactMetadata,
    DataWindow,
    RunBook,
    RunBusyError,
    RunCancelled,
    RunDoesNotExist,
    RunFinished,
    RunKind,
    RunLimitReached,
    RunStatus,
)

# A kind of run of its own (as churn models or recommenders will have), with its table.
PROBE = RunKind("probe-model", lock_class=0x7E57)
PROBE_RUN = Table(
    "probe_model_run",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, nullable=False, server_default="1"),
    Column("status", String(16), nullable=False),
    Column("progress", Float, nullable=False, server_default="0"),
    Column("error", String),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("metrics", JSONB),
)


@pytest.fixture(scope="module")
def probe_table(engine: Engine) -> Table:
    PROBE_RUN.create(engine, checkfirst=True)
    return PROBE_RUN


def test_two_runners_of_one_tenant_one_runs_the_other_is_told_busy(engine: Engine) -> None:
    tenant_id = uuid.uuid4().int % 10**9
    barrier = threading.Barrier(2)
    ran: list[str] = []
    busy: list[float] = []

    def runner(name: str) -> None:
        barrier.wait()
        try:
            with PROBE.single_runner(engine, tenant_id):
                ran.append(name)
                time.sleep(0.5)  # long enough for the other to try meanwhile
        except RunBusyError as exc:
            busy.append(exc.delay_s)

    threads = [threading.Thread(target=runner, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ran) == 1
    assert busy == [PROBE.busy_retry_s]  # asked to come back later
    with PROBE.single_runner(engine, tenant_id):  # and the lock is free again afterwards
        pass


def test_another_tenant_or_kind_is_not_blocked(engine: Engine) -> None:
    other_kind = RunKind("probe-other", lock_class=0x7E58)
    tenant = uuid.uuid4().int % 10**9
    with (
        PROBE.single_runner(engine, tenant),
        PROBE.single_runner(engine, tenant + 1),
        other_kind.single_runner(engine, tenant),
    ):
        pass


def test_two_kinds_cannot_share_a_lock_class() -> None:
    with pytest.raises(ValueError, match="lock class"):
        RunKind("impostor", lock_class=PROBE.lock_class)


def test_a_finished_run_is_never_moved_back(engine: Engine, probe_table: Table) -> None:
    book = RunBook(probe_table)
    with session_scope(engine) as session:
        run_id = session.execute(
            text("INSERT INTO probe_model_run (status) VALUES (:s) RETURNING id"),
            {"s": RunStatus.PENDING},
        ).scalar_one()
        assert book.start(session, run_id)
        assert book.succeed(session, run_id, progress=1.0)
        # A late failure report (a duplicate delivery, a dying worker) changes nothing.
        assert not book.fail(session, run_id, "late")
        assert not book.start(session, run_id)
        assert book.status(session, run_id) is RunStatus.SUCCEEDED
        row = session.execute(
            text("SELECT error, progress FROM probe_model_run WHERE id = :r"), {"r": run_id}
        ).one()
    assert tuple(row) == (None, 1.0)


def _probe_run(session: Session, tenant_id: int = 1) -> int:
    return int(
        session.execute(
            text("INSERT INTO probe_model_run (tenant_id, status) VALUES (:t, :s) RETURNING id"),
            {"t": tenant_id, "s": RunStatus.PENDING},
        ).scalar_one()
    )


def test_a_pending_run_is_cancelled_at_once_a_running_one_at_its_next_boundary(
    engine: Engine, probe_table: Table
) -> None:
    book = RunBook(probe_table)
    with session_scope(engine) as session:
        pending, running = _probe_run(session), _probe_run(session)
        assert book.start(session, running)
        assert book.cancel(session, pending) is RunStatus.CANCELLED
        assert book.cancel(session, running) is RunStatus.CANCELLING
        assert book.cancel(session, running) is RunStatus.CANCELLING  # asked twice: the same
        # The job of the running one reaches a stage boundary and stops there.
        with pytest.raises(RunCancelled):
            book.checkpoint(session, running)
        assert not book.start(session, running)  # a re-delivered job does not resume it
        assert not book.succeed(session, running)
        assert book.stop(session, running)
        for run_id in (pending, running):
            assert book.status(session, run_id) is RunStatus.CANCELLED
            assert book.cancel(session, run_id) is None  # finished: nothing to cancel
            assert not book.fail(session, run_id, "late")
            assert RunStatus.CANCELLED.terminal


def test_a_tenant_cancels_only_its_own_unfinished_runs(engine: Engine, probe_table: Table) -> None:
    book = RunBook(probe_table)
    with session_scope(engine) as session:
        mine, theirs = _probe_run(session, tenant_id=7), _probe_run(session, tenant_id=8)
        with pytest.raises(RunDoesNotExist, match=f"no probe-model run {theirs}"):
            PROBE.cancel(session, book, tenant_id=7, run_id=theirs)
        assert book.status(session, theirs) is RunStatus.PENDING
        assert PROBE.cancel(session, book, tenant_id=7, run_id=mine) is RunStatus.CANCELLED
        with pytest.raises(RunFinished, match="is cancelled already") as finished:
            PROBE.cancel(session, book, tenant_id=7, run_id=mine)
        assert finished.value.status is RunStatus.CANCELLED


def test_a_failure_while_being_cancelled_ends_the_run_cancelled(
    engine: Engine, probe_table: Table
) -> None:
    book = RunBook(probe_table)
    with session_scope(engine) as session:
        run_id = _probe_run(session)
        book.start(session, run_id)
        book.cancel(session, run_id)
        assert book.fail(session, run_id, "its worker died 3 times")
        assert book.status(session, run_id) is RunStatus.CANCELLED


def test_progress_shows_the_stage_and_a_stopped_run_reports_no_more_stages(
    engine: Engine, probe_table: Table
) -> None:
    book = RunBook(probe_table)

    def shown(run_id: int) -> tuple[float, object]:
        found = session.execute(
            text("SELECT progress, metrics FROM probe_model_run WHERE id = :r"), {"r": run_id}
        )
        progress, metrics = found.one()
        return progress, metrics

    with session_scope(engine) as session:
        run_id = _probe_run(session)
        book.start(session, run_id)
        book.stage_done(session, run_id, 0.3, "loaded")
        assert shown(run_id) == (0.3, {"stage": "loaded"})
        session.execute(
            text("UPDATE probe_model_run SET metrics = '{\"k\": 2}' WHERE id = :r"), {"r": run_id}
        )
        book.stage_done(session, run_id, 0.6, "fitted")  # the run's own figures are kept
        assert shown(run_id) == (0.6, {"k": 2, "stage": "fitted"})
        book.stage_done(session, run_id, 0.7)  # no stage: only how far it got
        assert shown(run_id) == (0.7, {"k": 2, "stage": "fitted"})
        book.cancel(session, run_id)
        with pytest.raises(RunCancelled):
            book.stage_done(session, run_id, 0.9, "scored")
        assert shown(run_id) == (0.7, {"k": 2, "stage": "fitted"})
        book.stop(session, run_id)
        book.progress(session, run_id, 1.0, "noted")  # a finished run may note its last step
        assert shown(run_id) == (1.0, {"k": 2, "stage": "noted"})


def test_a_tenant_is_admitted_up_to_its_limit_of_runs_in_flight(
    engine: Engine, probe_table: Table
) -> None:
    book = RunBook(probe_table)
    tenant_id = uuid.uuid4().int % 10**9 + 1
    with session_scope(engine) as session:
        first = _probe_run(session, tenant_id)
        PROBE.admit(session, book, tenant_id=tenant_id, limit=2)
        _probe_run(session, tenant_id)
        with pytest.raises(RunLimitReached) as refused:
            PROBE.admit(session, book, tenant_id=tenant_id, limit=2)
        assert (refused.value.limit, refused.value.retry_after_s) == (2, PROBE.busy_retry_s)
        PROBE.admit(session, book, tenant_id=tenant_id + 1, limit=2)  # another tenant
        book.start(session, first)
        book.succeed(session, first)
        PROBE.admit(session, book, tenant_id=tenant_id, limit=2)  # a finished run frees a place


def test_one_scheduler_of_a_kind_at_a_time(engine: Engine) -> None:
    with session_scope(engine) as first, session_scope(engine) as second:
        assert PROBE.try_scheduler_lock(first)
        assert not PROBE.try_scheduler_lock(second)
    with session_scope(engine) as later:  # the lock went with the first's transaction
        assert PROBE.try_scheduler_lock(later)


def test_artifact_metadata_records_what_reproduces_a_run() -> None:
    meta = ArtifactMetadata(
        kind=PROBE.name,
        data_window=DataWindow(as_of="2026-01-01T00:00:00Z", rows=10),
        feature_set="v1",
        parameters={"k": 3},
        metrics={"auc": 0.8},
        baselines={"previous_run": {"auc": 0.75}},
        seed=7,
    )
    assert meta.metric_against("auc", "previous_run") == (0.8, 0.75)
    assert {"python", "numpy"} <= set(meta.library_versions)
    assert ArtifactMetadata.model_validate_json(meta.model_dump_json()) == meta
