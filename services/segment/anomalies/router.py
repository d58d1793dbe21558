"""``/v1/anomalies``: flagged customers, segment alerts, and the runs that find them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.anomalies import repository as repo
from services.segment.anomalies.detectors import AnomalyKind
from services.segment.anomalies.params import AnomalyParams
from services.segment.anomalies.runs import cancel, create_run
from services.segment.anomalies.schemas import (
    AnomalyPage,
    AnomalyPublic,
    AnomalyRunCreate,
    AnomalyRunPublic,
    AnomalySummary,
    KindCount,
    SegmentAlertPage,
    SegmentAlertPublic,
)
from services.segment.segmentations.router import SegmentSettingsDep
from services.segment.segmentations.schemas import error_responses
from services.segment.settings import SegmentSettings
from shared.auth import Principal, Scope
from shared.db import session_scope
from shared.runs import RunDoesNotExist, RunFinished, RunLimitReached
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError, run_finished
from shared.web.times import IsoDatetime

router = APIRouter(prefix="/v1/anomalies", tags=["anomalies"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
ReaderDep = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="An anomaly run's id")]
Limit = Annotated[int, Query(ge=1, le=500)]
Before = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
Since = Annotated[IsoDatetime | None, Query(description="only what was detected since then")]


def _not_found(run_id: int) -> ApiError:
    return ApiError(
        404, f"no anomaly run {run_id}", errors=[{"field": "run_id", "message": "not found"}]
    )


def _read_run(session: Session, tenant_id: int, run_id: int) -> AnomalyRunPublic:
    run = repo.read_run(session, tenant_id=tenant_id, run_id=run_id)
    if run is None:
        raise _not_found(run_id)
    return AnomalyRunPublic.model_validate(run)


def _create(
    engine: Engine, principal: Principal, body: AnomalyRunCreate, settings: SegmentSettings
) -> AnomalyRunPublic:
    params = AnomalyParams(**body.model_dump(exclude_none=True), requested_by=principal.client)
    try:
        with session_scope(engine) as session:
            run_id = create_run(
                session,
                tenant_id=principal.tenant_id,
                params=params,
                max_in_flight=settings.segment_max_runs_in_flight,
            )
            return _read_run(session, principal.tenant_id, run_id)
    except RunLimitReached as exc:
        raise ApiError(
            429,
            str(exc),
            errors=[{"field": "anomaly_run", "message": f"limit of {exc.limit} reached"}],
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None


@router.post(
    "/runs",
    status_code=202,
    summary="Detect anomalies now",
    description="Queues a detection run and answers at once with it (status `pending`); "
    "follow it at `GET /v1/anomalies/runs/{id}`. A past `as_of` is a backtest. Runs also "
    "start on a schedule (setting `segment_anomaly_every_s`). Needs `admin`.",
    response_model=AnomalyRunPublic,
    responses=error_responses(413),
)
async def create_anomaly_run(
    body: AnomalyRunCreate,
    principal: AdminDep,
    database: DatabaseDep,
    settings: SegmentSettingsDep,
    response: Response,
) -> AnomalyRunPublic:
    run = await database.run(_create, database.engine, principal, body, settings)
    response.headers["Location"] = f"/v1/anomalies/runs/{run.id}"
    return run


def _run(engine: Engine, tenant_id: int, run_id: int) -> AnomalyRunPublic:
    with Session(engine) as session:
        return _read_run(session, tenant_id, run_id)


@router.get(
    "/runs/{run_id}",
    summary="One anomaly run",
    description="Status, progress, parameters, data window, counts of flags by kind and "
    "library versions. Needs `segments:read`.",
    response_model=AnomalyRunPublic,
    responses=error_responses(404),
)
async def read_anomaly_run(
    run_id: RunId, principal: ReaderDep, database: DatabaseDep
) -> AnomalyRunPublic:
    return await database.run(_run, database.engine, principal.tenant_id, run_id)


def _cancel(engine: Engine, tenant_id: int, run_id: int) -> AnomalyRunPublic:
    try:
        with session_scope(engine) as session:
            cancel(session, tenant_id=tenant_id, run_id=run_id)
            return _read_run(session, tenant_id, run_id)
    except RunDoesNotExist:
        raise _not_found(run_id) from None
    except RunFinished as exc:
        raise run_finished(exc) from None


@router.post(
    "/runs/{run_id}/cancel",
    status_code=202,
    summary="Cancel a pending or running anomaly run",
    description="A `pending` run is `cancelled` at once. A `running` one is `cancelling` "
    "until its detection reaches the next stage boundary, where it stops and ends "
    "`cancelled` (no flags or alerts are kept). A finished run cannot be cancelled (409). "
    "Needs `admin`.",
    response_model=AnomalyRunPublic,
    responses=error_responses(404, 409),
)
async def cancel_anomaly_run(
    run_id: RunId, principal: AdminDep, database: DatabaseDep
) -> AnomalyRunPublic:
    return await database.run(_cancel, database.engine, principal.tenant_id, run_id)


def _flags(
    engine: Engine,
    tenant_id: int,
    limit: int,
    before: int | None,
    since: datetime | None,
    kind: AnomalyKind | None,
    customer_id: str | None,
) -> AnomalyPage:
    with Session(engine) as session:
        rows = repo.list_flags(
            session,
            tenant_id=tenant_id,
            limit=limit + 1,
            before=before,
            since=since,
            kind=None if kind is None else str(kind),
            customer_id=customer_id,
        )
    items = [AnomalyPublic.model_validate(row) for row in rows[:limit]]
    return AnomalyPage(items=items, next=items[-1].id if len(rows) > limit else None)


@router.get(
    "",
    summary="Flagged customers, newest first",
    description="Customers whose recent window departs from their own history (spend "
    "spike or collapse, refund burst, support surge, sentiment turning negative, bot-like "
    "bursts) or from the population, with the reason and size. Filter by `since`, `kind` "
    "and `customer_id`; pass the answer's `next` as `before` for the following page. "
    "Needs `segments:read`.",
    response_model=AnomalyPage,
    responses=error_responses(),
)
async def read_anomalies(
    principal: ReaderDep,
    database: DatabaseDep,
    since: Since = None,
    kind: Annotated[AnomalyKind | None, Query()] = None,
    customer_id: Annotated[
        str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00]+$")
    ] = None,
    limit: Limit = 50,
    before: Before = None,
) -> AnomalyPage:
    return await database.run(
        _flags, database.engine, principal.tenant_id, limit, before, since, kind, customer_id
    )


def _alerts(
    engine: Engine, tenant_id: int, limit: int, before: int | None, since: datetime | None
) -> SegmentAlertPage:
    with Session(engine) as session:
        rows = repo.list_alerts(
            session, tenant_id=tenant_id, limit=limit + 1, before=before, since=since
        )
    items = [SegmentAlertPublic.model_validate(row) for row in rows[:limit]]
    return SegmentAlertPage(items=items, next=items[-1].id if len(rows) > limit else None)


@router.get(
    "/segments",
    summary="Segment alerts, newest first",
    description="Segments whose size or mean value left the band their history of runs "
    "predicts, with the band and the robust z. Needs `segments:read`.",
    response_model=SegmentAlertPage,
    responses=error_responses(),
)
async def read_segment_alerts(
    principal: ReaderDep,
    database: DatabaseDep,
    since: Since = None,
    limit: Limit = 50,
    before: Before = None,
) -> SegmentAlertPage:
    return await database.run(_alerts, database.engine, principal.tenant_id, limit, before, since)


def _summary(engine: Engine, tenant_id: int, days: int) -> AnomalySummary:
    with Session(engine) as session:
        counts = repo.counts_by_day(session, tenant_id=tenant_id, days=days)
        latest = repo.list_flags(
            session,
            tenant_id=tenant_id,
            limit=10,
            before=None,
            since=None,
            kind=None,
            customer_id=None,
        )
    return AnomalySummary(
        by_day=[KindCount.model_validate(row) for row in counts],
        latest=[AnomalyPublic.model_validate(row) for row in latest],
    )


@router.get(
    "/summary",
    summary="Flags per day and kind, and the latest flags (for the dashboard)",
    description="Counts of flags per UTC day and kind over the last `days` days, and the "
    "10 newest flags. Needs `segments:read`.",
    response_model=AnomalySummary,
    responses=error_responses(),
)
async def read_anomaly_summary(
    principal: ReaderDep,
    database: DatabaseDep,
    days: Annotated[int, Query(ge=1, le=366)] = 90,
) -> AnomalySummary:
    return await database.run(_summary, database.engine, principal.tenant_id, days)
