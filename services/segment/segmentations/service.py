"""Asking for a training, its cancellation or an activation, each in one transaction.

The worker does the work (``SEGMENT_TRAIN_SEGMENTATION``, ``SEGMENT_ACTIVATE_SEGMENTATION``);
the API never calls Celery, so a request acknowledged here is never lost with Redis.
"""

from __future__ import annotations

from sqlmodel import Session

from services.segment.segmentations import runs
from services.segment.segmentations.runs import SegmentationParams, SegmentationRequestInvalid
from services.segment.segmentations.schemas import SegmentationCreate
from services.segment.settings import SegmentSettings
from services.segment.training.fingerprint import unchanged_active_run
from shared.contracts import SEGMENT_ACTIVATE_SEGMENTATION
from shared.outbox import enqueue
from shared.runs import RunDoesNotExist, RunFinished, RunLimitReached, RunStatus

__all__ = [
    "RunDoesNotExist",
    "RunFinished",
    "RunLimitReached",
    "SegmentationDoesNotExist",
    "SegmentationNotSucceeded",
    "SegmentationRequestInvalid",
    "request_activation",
    "request_cancellation",
    "request_segmentation",
    "unchanged_run",
]


class SegmentationDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    def __init__(self, run_id: int) -> None:
        super().__init__(f"no segmentation run {run_id}")
        self.run_id = run_id


class SegmentationNotSucceeded(RuntimeError):  # noqa: N818
    def __init__(self, run_id: int, status: RunStatus) -> None:
        super().__init__(
            f"segmentation run {run_id} is {status}; only a succeeded run can be activated"
        )
        self.run_id, self.status = run_id, status


def request_segmentation(
    session: Session,
    *,
    tenant_id: int,
    requested_by: str,
    body: SegmentationCreate,
    settings: SegmentSettings,
) -> int:
    """A pending run and the outbox row that gets it trained; the run's id.
    `RunLimitReached` when the tenant has as many runs in flight as the settings allow."""
    params = _params(body, settings, requested_by)
    return runs.create_run(
        session,
        tenant_id=tenant_id,
        params=params,
        max_in_flight=settings.segment_max_runs_in_flight,
    )


def unchanged_run(
    session: Session,
    *,
    tenant_id: int,
    requested_by: str,
    body: SegmentationCreate,
    settings: SegmentSettings,
) -> int | None:
    """The active run when ``body`` would train it again on unchanged records."""
    params = _params(body, settings, requested_by)
    return unchanged_active_run(session, tenant_id=tenant_id, params=params)


def _params(
    body: SegmentationCreate, settings: SegmentSettings, requested_by: str
) -> SegmentationParams:
    return SegmentationParams.resolve(
        settings,
        algorithm=body.algorithm,
        k=body.k,
        feature_set=body.feature_set,
        seed=body.seed,
        sample_size=body.sample_size,
        promote=body.promote,
        requested_by=requested_by,
    )


def request_cancellation(session: Session, *, tenant_id: int, run_id: int) -> RunStatus:
    """Cancel a pending run at once, or ask a running one to stop at its next stage
    boundary; the run's status after the request (`RunDoesNotExist`, `RunFinished`)."""
    return runs.cancel(session, tenant_id=tenant_id, run_id=run_id)


def request_activation(session: Session, *, tenant_id: int, run_id: int) -> None:
    """Queue the activation of a succeeded run (the worker flips ``active`` and re-assigns)."""
    status = runs.lock_status(session, tenant_id=tenant_id, run_id=run_id)
    if status is None:
        raise SegmentationDoesNotExist(run_id)
    if status is not RunStatus.SUCCEEDED:
        raise SegmentationNotSucceeded(run_id, status)
    enqueue(
        session, tenant_id=tenant_id, task_name=SEGMENT_ACTIVATE_SEGMENTATION, subject_ids=[run_id]
    )
