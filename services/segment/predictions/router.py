"""``/v1/predictions``: train churn and purchase-propensity models, read their runs and
every customer's probability (paged JSON, or all of them as streamed CSV)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.predictions import repository as repo
from services.segment.predictions import service
from services.segment.predictions.schemas import (
    PredictionCreate,
    PredictionPage,
    PredictionPublic,
    ScorePage,
    ScorePublic,
)
from services.segment.segmentations.router import SegmentSettingsDep
from services.segment.segmentations.schemas import error_responses
from services.segment.settings import SegmentSettings
from shared.auth import Principal, Scope
from shared.cursors import customer_after, customer_cursor
from shared.db import session_scope
from shared.runs import RunStatus
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError, run_finished

router = APIRouter(prefix="/v1/predictions", tags=["predictions"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
ReaderDep = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A prediction run's id")]


def not_found(run_id: int) -> ApiError:
    return ApiError(
        404,
        f"no prediction run {run_id}",
        errors=[{"field": "prediction_id", "message": "not found"}],
    )


def _public(session: Session, tenant_id: int, run_id: int) -> PredictionPublic:
    run = repo.read_run(session, tenant_id=tenant_id, run_id=run_id)
    if run is None:
        raise not_found(run_id)
    return PredictionPublic.model_validate(run)


def _create(
    engine: Engine, principal: Principal, body: PredictionCreate, settings: SegmentSettings
) -> PredictionPublic:
    try:
        with session_scope(engine) as session:
            run_id = service.request_prediction(
                session,
                tenant_id=principal.tenant_id,
                requested_by=principal.client,
                body=body,
                settings=settings,
            )
            return _public(session, principal.tenant_id, run_id)
    except service.PredictionRequestInvalid as exc:
        raise ApiError(
            422, "invalid request", errors=[{"field": exc.field, "message": exc.message}]
        ) from None
    except service.RunLimitReached as exc:
        raise ApiError(
            429,
            f"{exc} (the limit is the segment_max_runs_in_flight setting)",
            errors=[{"field": "prediction_run", "message": f"limit of {exc.limit} reached"}],
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None


@router.post(
    "",
    status_code=202,
    summary="Train a churn or purchase-propensity model",
    description="Queues a run and answers at once with it (status `pending`); follow it "
    "at `GET /v1/predictions/{id}`. The model learns from the tenant's own history: "
    "features as of `as_of - horizon_days` and who bought in the horizon after that; "
    "then it scores every customer as of `as_of` (default now). A run of the present "
    "becomes the model's active one (its scores show in `GET /v1/customers/{id}`); a "
    "past `as_of` is a backtest. Needs `admin`.",
    response_model=PredictionPublic,
    responses=error_responses(413),
)
async def create_prediction(
    body: PredictionCreate,
    principal: AdminDep,
    database: DatabaseDep,
    settings: SegmentSettingsDep,
    response: Response,
) -> PredictionPublic:
    run = await database.run(_create, database.engine, principal, body, settings)
    response.headers["Location"] = f"/v1/predictions/{run.id}"
    return run


def _list(engine: Engine, tenant_id: int, limit: int, before: int | None) -> PredictionPage:
    with Session(engine) as session:
        found = repo.list_runs(session, tenant_id=tenant_id, limit=limit + 1, before=before)
    items = [PredictionPublic.model_validate(run) for run in found[:limit]]
    return PredictionPage(items=items, next=items[-1].id if len(found) > limit else None)


@router.get(
    "",
    summary="Prediction runs, newest first",
    description="Pass the answer's `next` as `before` for the following page. "
    "Needs `segments:read`.",
    response_model=PredictionPage,
    responses=error_responses(),
)
async def read_predictions(
    principal: ReaderDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> PredictionPage:
    return await database.run(_list, database.engine, principal.tenant_id, limit, before)


def _read(engine: Engine, tenant_id: int, run_id: int) -> PredictionPublic:
    with Session(engine) as session:
        return _public(session, tenant_id, run_id)


@router.get(
    "/{prediction_id}",
    summary="One prediction run",
    description="Status (`pending`, `running`, `succeeded`, `failed`, or `cancelling` "
    "and `cancelled`), progress, data "
    "window, metrics against the baselines, calibration, reliability curve and lift. "
    "Needs `segments:read`.",
    response_model=PredictionPublic,
    responses=error_responses(404),
)
async def read_prediction(
    prediction_id: RunId, principal: ReaderDep, database: DatabaseDep
) -> PredictionPublic:
    return await database.run(_read, database.engine, principal.tenant_id, prediction_id)


def _cancel(engine: Engine, tenant_id: int, run_id: int) -> PredictionPublic:
    try:
        with session_scope(engine) as session:
            service.request_cancellation(session, tenant_id=tenant_id, run_id=run_id)
            return _public(session, tenant_id, run_id)
    except service.RunDoesNotExist:
        raise not_found(run_id) from None
    except service.RunFinished as exc:
        raise run_finished(exc) from None


@router.post(
    "/{prediction_id}/cancel",
    status_code=202,
    summary="Cancel a pending or running run",
    description="A `pending` run is `cancelled` at once. A `running` one is `cancelling` "
    "until its training reaches the next stage boundary, where it stops and ends "
    "`cancelled` (no scores are kept, and the model's active run stays as it was). A "
    "finished run cannot be cancelled (409). Needs `admin`.",
    response_model=PredictionPublic,
    responses=error_responses(404, 409),
)
async def cancel_prediction(
    prediction_id: RunId, principal: AdminDep, database: DatabaseDep
) -> PredictionPublic:
    return await database.run(_cancel, database.engine, principal.tenant_id, prediction_id)


def _scored_run(session: Session, tenant_id: int, run_id: int) -> None:
    run = _public(session, tenant_id, run_id)
    if run.status is not RunStatus.SUCCEEDED:
        raise ApiError(
            409,
            f"prediction run {run_id} is {run.status}; its scores exist once it succeeds",
            errors=[{"field": "status", "message": str(run.status)}],
        )


def _scores(engine: Engine, tenant_id: int, run_id: int, after: int, limit: int) -> ScorePage:
    with Session(engine) as session:
        _scored_run(session, tenant_id, run_id)
        after_pk = customer_after(session, after, field="after")
        rows = repo.scores(
            session, tenant_id=tenant_id, run_id=run_id, after=after_pk, limit=limit + 1
        )
        page = rows[:limit]
        more = len(rows) > limit
        return ScorePage(
            prediction_id=run_id,
            items=[
                ScorePublic.model_validate({**row, "reasons": row["reasons"] or []}) for row in page
            ],
            next=customer_cursor(session, page[-1]["customer_pk"]) if more else None,
        )


def _csv(engine: Engine, tenant_id: int, run_id: int) -> Iterator[bytes]:
    yield b"customer_id,probability\n"
    lines: list[str] = []
    for customer_id, probability in repo.stream_scores(engine, tenant_id=tenant_id, run_id=run_id):
        lines.append(f"{_csv_field(customer_id)},{probability:.6f}\n")
        if len(lines) >= 1000:
            yield "".join(lines).encode()
            lines = []
    yield "".join(lines).encode()


def _csv_field(value: str) -> str:
    # An id may hold commas or quotes; a leading =, +, - or @ would run as a spreadsheet
    # formula, so such an id is quoted with a leading apostrophe.
    if value[:1] in ("=", "+", "-", "@"):
        value = "'" + value
    if any(ch in value for ch in ',"\n\r') or value.startswith("'"):
        return '"' + value.replace('"', '""') + '"'
    return value


def _check(engine: Engine, tenant_id: int, run_id: int) -> None:
    with Session(engine) as session:
        _scored_run(session, tenant_id, run_id)


@router.get(
    "/{prediction_id}/scores",
    summary="Every customer's probability under a run",
    description="Pages of customers with their probability, expected spend (purchase "
    "propensity) and top reasons; pass `next` as `after` for the next page. With "
    "`format=csv`, every customer at once, streamed: `customer_id,probability`. Only a "
    "`succeeded` run has scores (409 otherwise). Needs `segments:read`.",
    response_model=ScorePage,
    responses={
        **error_responses(404, 409),
        200: {"content": {"text/csv": {}}, "description": "a page, or CSV with format=csv"},
    },
)
async def read_prediction_scores(
    prediction_id: RunId,
    principal: ReaderDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="a `next` cursor")] = 0,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> ScorePage | StreamingResponse:
    tenant_id = principal.tenant_id
    if format == "csv":
        await database.run(_check, database.engine, tenant_id, prediction_id)
        return StreamingResponse(
            _csv(database.engine, tenant_id, prediction_id),
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="prediction-{prediction_id}.csv"'
            },
        )
    return await database.run(_scores, database.engine, tenant_id, prediction_id, after, limit)
