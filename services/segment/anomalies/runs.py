"""The owner of the ``anomaly_run``, ``anomaly_flag`` and ``segment_alert`` tables: every
insert and update of them is here.

A run is asked for by the API or the schedule (`create_run`, within the tenant's limit
of runs in flight), worked by the segment runs worker (`load_request`, `mark_running`,
`stage_done`, `save_result`; `give_up` when it fails) and read by the API through
``repository``. A run's flags and alerts are written with its success, in one
transaction: a run is either succeeded with all of them or has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlmodel import Session

from services.segment.anomalies.detect import FlagRecord
from services.segment.anomalies.params import AnomalyParams
from services.segment.anomalies.segments import AlertRecord
from shared.contracts import SEGMENT_DETECT_ANOMALIES
from shared.models.anomalies import AnomalyFlag, AnomalyRun, SegmentAlert
from shared.outbox import enqueue
from shared.runs import TERMINAL, ArtifactMetadata, RunBook, RunCancelled, RunKind, RunStatus

ANOMALY = RunKind("anomaly", lock_class=0xA7A1)
_BOOK = RunBook(AnomalyRun)
_RUN = _BOOK.table.c


@dataclass(frozen=True)
class AnomalyRequest:
    id: int
    tenant_id: int
    params: AnomalyParams


@dataclass(frozen=True)
class AnomalyResult:
    as_of: datetime
    window_start: datetime
    flags: list[FlagRecord]
    alerts: list[AlertRecord]
    metadata: ArtifactMetadata


def create_run(
    session: Session, *, tenant_id: int, params: AnomalyParams, max_in_flight: int
) -> int:
    """A pending run and the outbox row that gets it worked, in the caller's transaction;
    `shared.runs.RunLimitReached` when the tenant has ``max_in_flight`` runs already."""
    ANOMALY.admit(session, _BOOK, tenant_id=tenant_id, limit=max_in_flight)
    run = AnomalyRun(
        tenant_id=tenant_id,
        status=RunStatus.PENDING,
        params=params.stored(),
        seed=params.seed,
        progress=0.0,
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    enqueue(session, tenant_id=tenant_id, task_name=SEGMENT_DETECT_ANOMALIES, subject_ids=[run.id])
    return run.id


def load_request(session: Session, run_id: int) -> AnomalyRequest | None:
    """The run to work, or None when it is finished (or gone)."""
    row = session.execute(
        select(_RUN.id, _RUN.tenant_id, _RUN.params).where(
            _RUN.id == run_id, _RUN.status.notin_([str(s) for s in TERMINAL])
        )
    ).one_or_none()
    if row is None:
        return None
    return AnomalyRequest(row.id, row.tenant_id, AnomalyParams.model_validate(row.params or {}))


mark_running = _BOOK.start
# The detection stopped at a stage boundary of a run being cancelled.
mark_cancelled = _BOOK.stop
# The detection long job's end when it raised or its worker kept dying.
give_up = _BOOK.give_up
# A stage boundary: its progress, or `shared.runs.RunCancelled` when the run was asked
# to stop meanwhile.
stage_done = _BOOK.stage_done


def already_flagged(
    session: Session, *, tenant_id: int, run_id: int, start: datetime, end: datetime
) -> set[tuple[int, str]]:
    """(customer, kind) pairs that another run flagged for a window overlapping
    ``start .. end``: the same change seen again by the next day's run, not a new one."""
    flag = AnomalyFlag.__table__.c  # type: ignore[attr-defined]
    found = session.execute(
        select(flag.customer_pk, flag.kind).where(
            flag.tenant_id == tenant_id,
            flag.run_id != run_id,
            flag.window_end > start,
            flag.window_start < end,
        )
    )
    return {(int(pk), str(kind)) for pk, kind in found}


def save_result(session: Session, run: AnomalyRequest, result: AnomalyResult) -> None:
    """The run's flags and alerts; the run succeeds with them (a re-run replaces them)."""
    session.execute(delete(AnomalyFlag).where(AnomalyFlag.run_id == run.id))  # type: ignore[arg-type]
    session.execute(delete(SegmentAlert).where(SegmentAlert.run_id == run.id))  # type: ignore[arg-type]
    flags: list[dict[str, Any]] = [
        {
            "tenant_id": run.tenant_id,
            "customer_pk": flag.customer_pk,
            "run_id": run.id,
            "kind": str(flag.kind),
            "reason": flag.reason,
            "size": flag.size,
            "observed": flag.observed,
            "expected": flag.expected,
            "window_start": result.window_start,
            "window_end": result.as_of,
        }
        for flag in result.flags
    ]
    if flags:
        session.execute(insert(AnomalyFlag), flags)
    alerts = [
        {"tenant_id": run.tenant_id, "run_id": run.id, **alert.__dict__} for alert in result.alerts
    ]
    if alerts:
        session.execute(insert(SegmentAlert), alerts)
    meta = result.metadata
    succeeded = _BOOK.succeed(
        session,
        run.id,
        progress=1.0,
        metrics=meta.metrics,
        data_window=meta.data_window.model_dump(mode="json", exclude_none=True),
        library_versions=meta.library_versions,
    )
    if not succeeded:  # asked to stop meanwhile: the caller's rollback drops the flags
        raise RunCancelled(run.id)


def cancel(session: Session, *, tenant_id: int, run_id: int) -> RunStatus:
    """The tenant's request to cancel the run (`shared.runs.RunKind.cancel`)."""
    return ANOMALY.cancel(session, _BOOK, tenant_id=tenant_id, run_id=run_id)
