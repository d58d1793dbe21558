"""``GET /dashboard`` (the page), its static files, and the ``/v1/dashboard/...`` data.

The page carries no key: it asks for one, keeps it in the tab's sessionStorage and sends it
as a Bearer header to the data endpoints, which need ``admin`` (the decision log is the
business's own performance data).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine
from sqlmodel import Session

from services.personalize.dashboard import service
from services.personalize.dashboard.assets import PlotlyMissing, assets, page
from services.personalize.dashboard.schemas import (
    Allocation,
    Bucket,
    Evaluation,
    Experiments,
    OfferStats,
    PlacementList,
    RecommenderRuns,
    Strategy,
)
from shared.auth import Principal, Scope
from shared.web.assets import PAGE_HEADERS
from shared.web.deps import Database, DatabaseDep, require
from shared.web.errors import ApiError
from shared.web.responses import error_responses

router = APIRouter(tags=["dashboard"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
PlacementPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
DaysQuery = Annotated[int, Query(ge=1, le=365, description="the window: the last N days")]
T = TypeVar("T")


@router.get("/dashboard", include_in_schema=False, response_class=HTMLResponse)
async def read_dashboard() -> HTMLResponse:
    try:
        return HTMLResponse(page(), headers=PAGE_HEADERS)
    except PlotlyMissing as exc:
        raise ApiError(503, str(exc)) from None


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def read_dashboard_asset(name: str, request: Request) -> Response:
    try:
        asset = assets().get(name)
    except PlotlyMissing as exc:
        raise ApiError(503, str(exc)) from None
    if asset is None:
        raise ApiError(404, f"no dashboard file {name!r}")
    return asset.response(request)


def _since(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def _read(database: Database, work: Callable[[Session], T]) -> T:
    def run(engine: Engine) -> T:
        with Session(engine) as session:
            return work(session)

    return await database.run(run, database.engine)


@router.get(
    "/v1/dashboard/placements",
    summary="Placements, their strategy and traffic",
    description="Every placement with its configuration, its active bandit policy's "
    "version and its decisions in the window. Needs `admin`.",
    response_model=PlacementList,
    responses=error_responses(),
)
async def read_dashboard_placements(
    principal: AdminDep, database: DatabaseDep, days: DaysQuery = 30
) -> PlacementList:
    since = _since(days)
    return await _read(
        database, lambda s: service.placement_list(s, tenant_id=principal.tenant_id, since=since)
    )


@router.get(
    "/v1/dashboard/placements/{placement}/offers",
    summary="Exposures and conversion rates per segment and offer",
    description="Per (segment, offer): decisions that showed the offer and those converted "
    'on it, with a 95% Wilson interval; segment `"*"` totals all segments and `"-"` '
    "holds decisions without one. Needs `admin`.",
    response_model=OfferStats,
    responses=error_responses(),
)
async def read_dashboard_offers(
    placement: PlacementPath, principal: AdminDep, database: DatabaseDep, days: DaysQuery = 30
) -> OfferStats:
    since = _since(days)
    return await _read(
        database,
        lambda s: service.offer_stats(
            s, tenant_id=principal.tenant_id, placement=placement, since=since
        ),
    )


@router.get(
    "/v1/dashboard/placements/{placement}/allocation",
    summary="How the policy shared traffic between offers over time",
    description="The first-ranked offer of each decision the `strategy` chose (default "
    "`bandit`; experiment arms included), counted per time bucket; `bucket` is picked from "
    'the data\'s span when absent. `segment`: one segment key (`"-"`: none), absent: '
    "all. Needs `admin`.",
    response_model=Allocation,
    responses=error_responses(),
)
async def read_dashboard_allocation(
    placement: PlacementPath,
    principal: AdminDep,
    database: DatabaseDep,
    days: DaysQuery = 30,
    segment: Annotated[
        str | None, Query(min_length=1, max_length=32, pattern=r"^[^\x00]+$")
    ] = None,
    bucket: Bucket | None = None,
    strategy: Strategy = "bandit",
) -> Allocation:
    since = _since(days)
    return await _read(
        database,
        lambda s: service.allocation(
            s,
            tenant_id=principal.tenant_id,
            placement=placement,
            since=since,
            segment=segment,
            bucket=bucket,
            strategy=strategy,
        ),
    )


@router.get(
    "/v1/dashboard/experiments",
    summary="Recent experiments' reports",
    description="The ten newest experiments (of one placement when `placement` is given), "
    "each with its report and, per arm, the always-valid test's state against the "
    "control. Needs `admin`.",
    response_model=Experiments,
    responses=error_responses(),
)
async def read_dashboard_experiments(
    principal: AdminDep,
    database: DatabaseDep,
    placement: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = None,
) -> Experiments:
    return await _read(
        database,
        lambda s: service.experiments(s, tenant_id=principal.tenant_id, placement=placement),
    )


@router.get(
    "/v1/dashboard/placements/{placement}/evaluation",
    summary="Off-policy estimates for uniform random and the best single offer",
    description="IPS, self-normalised IPS and doubly robust estimates with 95% bootstrap "
    "intervals and the effective sample size, for `uniform` and `static:<best offer>`, "
    "next to what the logged policies earned. Needs `admin`.",
    response_model=Evaluation,
    responses=error_responses(),
)
async def read_dashboard_evaluation(
    placement: PlacementPath, principal: AdminDep, database: DatabaseDep, days: DaysQuery = 30
) -> Evaluation:
    since = _since(days)
    return await _read(
        database,
        lambda s: service.evaluation(
            s, tenant_id=principal.tenant_id, placement=placement, since=since
        ),
    )


@router.get(
    "/v1/dashboard/recommenders",
    summary="The latest recommender runs and their offline figures",
    description="The newest runs (`limit`, 5 by default) with status, progress and, for a "
    "run that evaluated itself, precision and NDCG at 10 on its time split next to the "
    "popularity baseline's; `served` is the run whose lists are served. Needs `admin`.",
    response_model=RecommenderRuns,
    responses=error_responses(),
)
async def read_dashboard_recommenders(
    principal: AdminDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> RecommenderRuns:
    return await _read(
        database,
        lambda s: service.recommender_runs(s, tenant_id=principal.tenant_id, limit=limit),
    )
