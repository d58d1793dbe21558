"""``GET /v1/placements/{placement}/evaluation``: off-policy estimates from the decision log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Engine
from sqlmodel import Session

from services.personalize.evaluation.service import NothingToEvaluate, Target, evaluate_placement
from shared.auth import Principal, Scope
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError
from shared.web.responses import error_responses

router = APIRouter(prefix="/v1/placements", tags=["offers"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]


class EstimateOut(BaseModel):
    estimate: float
    ci_low: float
    ci_high: float


class EvaluationOut(BaseModel):
    placement: str
    target: str
    ips: EstimateOut
    snips: EstimateOut
    dr: EstimateOut | None
    ess: float
    rows: int
    warning: str | None = None


def _evaluate(
    engine: Engine, tenant_id: int, placement: str, target: str, since: datetime
) -> EvaluationOut:
    try:
        parsed = Target.parse(target)
    except ValueError as exc:
        raise ApiError(
            422, "invalid target", errors=[{"field": "target", "message": str(exc)}]
        ) from None
    try:
        with Session(engine) as session:
            report = evaluate_placement(
                session, tenant_id=tenant_id, placement=placement, target=parsed, since=since
            )
    except NothingToEvaluate as exc:
        raise ApiError(422, str(exc), errors=[{"field": "since", "message": str(exc)}]) from None
    data: dict[str, Any] = report.to_dict()
    return EvaluationOut(placement=placement, target=target, **data)


@router.get(
    "/{placement}/evaluation",
    summary="What another policy would have earned here",
    description="Inverse propensity scoring, its self-normalised form and doubly robust "
    "estimates of the target's conversion rate per decision, each with a 95% bootstrap "
    "interval, and the effective sample size: a warning when it is under 5% of the rows. "
    "`target`: `uniform` or `static:<offer_id>`. Needs `admin`.",
    response_model=EvaluationOut,
    responses=error_responses(),
)
async def read_evaluation(
    placement: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")],
    principal: AdminDep,
    database: DatabaseDep,
    target: Annotated[str, Query(max_length=140)] = "uniform",
    since: Annotated[AwareDatetime | None, Query()] = None,
) -> EvaluationOut:
    start = since or datetime.now(UTC) - timedelta(days=30)
    return await database.run(
        _evaluate, database.engine, principal.tenant_id, placement, target, start
    )
