"""``/v1/segmentations``: ask for a training, follow runs, cancel one, activate a succeeded one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.segmentations import repository as repo
from services.segment.segmentations import service
from services.segment.segmentations.schemas import (
    SegmentationCreate,
    SegmentationPage,
    SegmentationPublic,
    error_responses,
)
from services.segment.settings import SegmentSettings
from shared.auth import Principal, Scope
from shared.db import session_scope
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError, run_finished

router = APIRouter(prefix="/v1/segmentations", tags=["segmentations"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
ReaderDep = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A segmentation run's id")]


def get_segment_settings(request: Request) -> SegmentSettings:
    settings: SegmentSettings = request.app.state.settings
    return settings


SegmentSettingsDep = Annotated[SegmentSettings, Depends(get_segment_settings)]


def not_found(run_id: int) -> ApiError:
    return ApiError(
        404,
        f"no segmentation run {run_id}",
        errors=[{"field": "segmentation_id", "message": "not found"}],
    )


def _public(session: Session, tenant_id: int, run_id: int) -> SegmentationPublic:
    run = repo.read_run(session, tenant_id=tenant_id, run_id=run_id)
    if run is None:
        raise not_found(run_id)
    return SegmentationPublic.model_validate(run)


def _create(
    engine: Engine, principal: Principal, body: SegmentationCreate, settings: SegmentSettings
) -> SegmentationPublic:
    try:
        with session_scope(engine) as session:
            tenant_id, client = principal.tenant_id, principal.client
            if body.skip_if_unchanged and (
                same := service.unchanged_run(
                    session, tenant_id=tenant_id, requested_by=client, body=body, settings=settings
                )
            ):
                return _public(session, tenant_id, same).model_copy(update={"unchanged": True})
            run_id = service.request_segmentation(
                session, tenant_id=tenant_id, requested_by=client, body=body, settings=settings
            )
            return _public(session, principal.tenant_id, run_id)
    except service.SegmentationRequestInvalid as exc:
        raise ApiError(
            422, "invalid request", errors=[{"field": exc.field, "message": exc.message}]
        ) from None
    except service.RunLimitReached as exc:
        raise ApiError(
            429,
            f"{exc} (the limit is the segment_max_runs_in_flight setting)",
            errors=[{"field": "segmentation_run", "message": f"limit of {exc.limit} reached"}],
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None


@router.post(
    "",
    status_code=202,
    summary="Train a new segmentation",
    description="Queues a training run and answers at once with it (status `pending`); "
    "follow it at `GET /v1/segmentations/{id}`. Fields left out take the service's "
    "defaults. With `promote: auto` the run becomes the active segmentation when it is "
    "good and stable enough. A tenant may have a limited number of runs pending or "
    "running at once (setting `segment_max_runs_in_flight`, 3 by default): beyond it the "
    "answer is 429 with `Retry-After`. With `skip_if_unchanged` and nothing changed since "
    "the active run was trained, the answer is 200 with that run and `unchanged: true`. "
    "Needs `admin`.",
    response_model=SegmentationPublic,
    responses=error_responses(413),
)
async def create_segmentation(
    body: SegmentationCreate,
    principal: AdminDep,
    database: DatabaseDep,
    settings: SegmentSettingsDep,
    response: Response,
) -> SegmentationPublic:
    run = await database.run(_create, database.engine, principal, body, settings)
    if run.unchanged:
        response.status_code = 200
    response.headers["Location"] = f"/v1/segmentations/{run.id}"
    return run


def _list(engine: Engine, tenant_id: int, limit: int, before: int | None) -> SegmentationPage:
    with Session(engine) as session:
        runs = repo.list_runs(session, tenant_id=tenant_id, limit=limit + 1, before=before)
    items = [SegmentationPublic.model_validate(run) for run in runs[:limit]]
    return SegmentationPage(items=items, next=items[-1].id if len(runs) > limit else None)


@router.get(
    "",
    summary="Segmentation runs, newest first",
    description="Pages of runs with their status, metrics and segments. Pass the answer's "
    "`next` as `before` for the following page. Needs `segments:read`.",
    response_model=SegmentationPage,
    responses=error_responses(),
)
async def read_segmentations(
    principal: ReaderDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> SegmentationPage:
    return await database.run(_list, database.engine, principal.tenant_id, limit, before)


def _read(engine: Engine, tenant_id: int, run_id: int) -> SegmentationPublic:
    with Session(engine) as session:
        return _public(session, tenant_id, run_id)


@router.get(
    "/{segmentation_id}",
    summary="One segmentation run",
    description="Status, progress, parameters, data window, metrics (with the k-curve), "
    "library versions and segments of a run. Needs `segments:read`.",
    response_model=SegmentationPublic,
    responses=error_responses(404),
)
async def read_segmentation(
    segmentation_id: RunId, principal: ReaderDep, database: DatabaseDep
) -> SegmentationPublic:
    return await database.run(_read, database.engine, principal.tenant_id, segmentation_id)


def _activate(engine: Engine, tenant_id: int, run_id: int) -> SegmentationPublic:
    try:
        with session_scope(engine) as session:
            service.request_activation(session, tenant_id=tenant_id, run_id=run_id)
            return _public(session, tenant_id, run_id)
    except service.SegmentationDoesNotExist:
        raise not_found(run_id) from None
    except service.SegmentationNotSucceeded as exc:
        errors: list[dict[str, str]] = [{"field": "status", "message": exc.status}]
        raise ApiError(409, str(exc), errors=errors) from None


@router.post(
    "/{segmentation_id}/activate",
    status_code=202,
    summary="Make a succeeded run the active segmentation",
    description="Queues the activation: the worker makes the run the tenant's active one "
    "and re-assigns every customer, recording who moved and why. Only a `succeeded` run "
    "can be activated (409 otherwise). Needs `admin`.",
    response_model=SegmentationPublic,
    responses=error_responses(404, 409),
)
async def activate_segmentation(
    segmentation_id: RunId, principal: AdminDep, database: DatabaseDep
) -> SegmentationPublic:
    return await database.run(_activate, database.engine, principal.tenant_id, segmentation_id)


def _cancel(engine: Engine, tenant_id: int, run_id: int) -> SegmentationPublic:
    try:
        with session_scope(engine) as session:
            service.request_cancellation(session, tenant_id=tenant_id, run_id=run_id)
            return _public(session, tenant_id, run_id)
    except service.RunDoesNotExist:
        raise not_found(run_id) from None
    except service.RunFinished as exc:
        raise run_finished(exc) from None


@router.post(
    "/{segmentation_id}/cancel",
    status_code=202,
    summary="Cancel a pending or running run",
    description="A `pending` run is `cancelled` at once. A `running` one is `cancelling` "
    "until its training reaches the next stage boundary, where it stops and ends "
    "`cancelled` (nothing it trained is kept). A finished run cannot be cancelled (409). "
    "Needs `admin`.",
    response_model=SegmentationPublic,
    responses=error_responses(404, 409),
)
async def cancel_segmentation(
    segmentation_id: RunId, principal: AdminDep, database: DatabaseDep
) -> SegmentationPublic:
    return await database.run(_cancel, database.engine, principal.tenant_id, segmentation_id)
