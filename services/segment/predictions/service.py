"""Asking for a prediction run (in one transaction with its outbox row; the worker
trains) or its cancellation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from services.segment.predictions import runs
from services.segment.predictions.runs import PredictionParams, PredictionRequestInvalid
from services.segment.predictions.schemas import PredictionCreate
from services.segment.settings import SegmentSettings
from shared.runs import RunDoesNotExist, RunFinished, RunLimitReached, RunStatus

__all__ = [
    "PredictionRequestInvalid",
    "RunDoesNotExist",
    "RunFinished",
    "RunLimitReached",
    "request_cancellation",
    "request_prediction",
]

# A clock a little ahead of the database's must not turn "now" into the future.
CLOCK_SLACK = timedelta(minutes=5)


def request_prediction(
    session: Session,
    *,
    tenant_id: int,
    requested_by: str,
    body: PredictionCreate,
    settings: SegmentSettings,
) -> int:
    """A pending run and the outbox row that gets it trained; the run's id."""
    if body.as_of is not None and body.as_of > datetime.now(UTC) + CLOCK_SLACK:
        raise PredictionRequestInvalid("as_of", "must not be in the future")
    params = PredictionParams.resolve(
        settings,
        model=body.model,
        horizon_days=body.horizon_days,
        as_of=body.as_of,
        feature_set=body.feature_set,
        seed=body.seed,
        requested_by=requested_by,
    )
    return runs.create_run(
        session,
        tenant_id=tenant_id,
        params=params,
        max_in_flight=settings.segment_max_runs_in_flight,
    )


def request_cancellation(session: Session, *, tenant_id: int, run_id: int) -> RunStatus:
    """Cancel a pending run at once, or ask a running one to stop at its next stage
    boundary; the run's status after the request (`RunDoesNotExist`, `RunFinished`)."""
    return runs.cancel(session, tenant_id=tenant_id, run_id=run_id)
