"""``/v1/recommenders/runs`` (train, follow, cancel) and ``GET /v1/recommendations/{customer_id}``.

Serving reads Redis only: the customer's precomputed list, else their segment's popular
products, else everyone's — never a 404. One coalesced round trip for a known customer.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlmodel import Session

from services.personalize.cache import customer_key, popular_key, recs_key, subject_hash
from services.personalize.recommend import runs
from services.personalize.recommend.schemas import (
    RecommendationAnswer,
    RecommenderRunCreate,
    RecommenderRunPublic,
)
from services.personalize.serving.coalesce import Coalescer
from services.personalize.settings import PersonalizeSettings
from shared.auth import Principal, Scope
from shared.db import session_scope
from shared.runs import RunDoesNotExist, RunFinished, RunLimitReached
from shared.web.deps import BEARER_SECURITY, DatabaseDep, require
from shared.web.errors import ApiError, run_finished
from shared.web.responses import error_responses

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["recommendations"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
StorefrontDep = Annotated[Principal, Depends(require(Scope.OFFERS_READ, cached=True))]
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A recommender run's id")]
CustomerId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]


def _not_found(run_id: int) -> ApiError:
    errors = [{"field": "run_id", "message": "not found"}]
    return ApiError(404, f"no recommender run {run_id}", errors=errors)


def _public(session: Session, tenant_id: int, run_id: int) -> RecommenderRunPublic:
    run = runs.read_run(session, tenant_id=tenant_id, run_id=run_id)
    if run is None:
        raise _not_found(run_id)
    return RecommenderRunPublic.model_validate(run)


def _create(
    engine: Engine, principal: Principal, body: RecommenderRunCreate, settings: PersonalizeSettings
) -> RecommenderRunPublic:
    params = runs.RecommenderParams.resolve(
        settings, requested_by=principal.client, **body.model_dump(exclude_none=True)
    )
    try:
        with session_scope(engine) as session:
            run_id = runs.create_run(
                session,
                tenant_id=principal.tenant_id,
                params=params,
                max_in_flight=settings.personalize_recs_max_runs_in_flight,
            )
            return _public(session, principal.tenant_id, run_id)
    except RunLimitReached as exc:
        raise ApiError(
            429,
            str(exc),
            errors=[{"field": "recommender_run", "message": f"limit of {exc.limit} reached"}],
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None


@router.post(
    "/recommenders/runs",
    status_code=202,
    summary="Train the product recommender",
    description="Queues a training run (status `pending`) and answers at once; follow it "
    "at `GET /v1/recommenders/runs/{id}`. The body may be `{}` for the defaults. When it "
    "succeeds, its recommendations are served. Needs `admin`.",
    response_model=RecommenderRunPublic,
    responses=error_responses(413),
)
async def create_recommender_run(
    principal: AdminDep,
    database: DatabaseDep,
    request: Request,
    response: Response,
    body: Annotated[RecommenderRunCreate | None, Body()] = None,
) -> RecommenderRunPublic:
    settings: PersonalizeSettings = request.app.state.settings
    run = await database.run(
        _create, database.engine, principal, body or RecommenderRunCreate(), settings
    )
    response.headers["Location"] = f"/v1/recommenders/runs/{run.id}"
    return run


def _read(engine: Engine, tenant_id: int, run_id: int) -> RecommenderRunPublic:
    with Session(engine) as session:
        return _public(session, tenant_id, run_id)


@router.get(
    "/recommenders/runs/{run_id}",
    summary="One recommender run",
    description="Status (`pending`, `running`, `succeeded`, `failed`, `cancelling`, "
    "`cancelled`, as for segmentation runs), progress, parameters, data window, offline "
    "metrics against popularity and library versions. Needs `admin`.",
    response_model=RecommenderRunPublic,
    responses=error_responses(404),
)
async def read_recommender_run(
    run_id: RunId, principal: AdminDep, database: DatabaseDep
) -> RecommenderRunPublic:
    return await database.run(_read, database.engine, principal.tenant_id, run_id)


def _cancel(engine: Engine, tenant_id: int, run_id: int) -> RecommenderRunPublic:
    try:
        with session_scope(engine) as session:
            runs.cancel(session, tenant_id=tenant_id, run_id=run_id)
            return _public(session, tenant_id, run_id)
    except RunDoesNotExist:
        raise _not_found(run_id) from None
    except RunFinished as exc:
        raise run_finished(exc) from None


@router.post(
    "/recommenders/runs/{run_id}/cancel",
    status_code=202,
    summary="Cancel a pending or running recommender run",
    description="A `pending` run is `cancelled` at once. A `running` one is `cancelling` "
    "until its training reaches the next stage boundary, where it stops and ends "
    "`cancelled`; the lists served stay the previous run's (a run stopped while it "
    "publishes has replaced those of the customers it wrote already). A finished run "
    "cannot be cancelled (409). Needs `admin`.",
    response_model=RecommenderRunPublic,
    responses=error_responses(404, 409),
)
async def cancel_recommender_run(
    run_id: RunId, principal: AdminDep, database: DatabaseDep
) -> RecommenderRunPublic:
    return await database.run(_cancel, database.engine, principal.tenant_id, run_id)


def _parse(raw: Any) -> dict[str, Any] | None:
    return orjson.loads(raw) if isinstance(raw, bytes | str) else None


async def _lookup(coalescer: Coalescer, tenant_id: int, subject: str) -> dict[str, Any] | None:
    own, segment, everyone = await coalescer.execute(
        ("GET", recs_key(tenant_id, subject)),
        ("HGET", customer_key(tenant_id, subject), "segment"),
        ("GET", popular_key(tenant_id, None)),
    )
    for reply in (own, segment, everyone):
        if isinstance(reply, Exception):
            raise reply
    if own is not None:
        return _parse(own)
    if segment is not None:
        key = segment.decode() if isinstance(segment, bytes) else str(segment)
        (popular,) = await coalescer.execute(("GET", popular_key(tenant_id, key)))
        if isinstance(popular, bytes | str):
            return _parse(popular)
    return _parse(everyone)


@router.get(
    "/recommendations/{customer_id}",
    summary="Product recommendations for a customer",
    description="The customer's top `n` products from the latest succeeded recommender "
    "run, each with a score and a reason. A customer the recommender does not know gets "
    "their segment's (or everyone's) popular products; before any run (or while Redis is "
    "unreachable), an empty list. Needs `offers:read`.",
    response_model=None,
    responses={
        **error_responses(),
        200: {"model": RecommendationAnswer, "description": "What to show"},
    },
    openapi_extra={"security": BEARER_SECURITY},
)
async def read_recommendations(
    customer_id: CustomerId,
    principal: StorefrontDep,
    request: Request,
    n: Annotated[int, Query(ge=1, le=200)] = 10,
) -> Response:
    state = request.app.state
    subject = subject_hash(state.secret, customer_id)
    try:
        found = await _lookup(state.coalescer, principal.tenant_id, subject)
    except RedisError as exc:
        log.warning("Redis unreachable, no recommendations: %s", type(exc).__name__)
        found = None
    body = {
        "customer_id": customer_id,
        "model_version": found["v"] if found else None,
        "items": found["items"][:n] if found else [],
    }
    return Response(orjson.dumps(body), media_type="application/json")
