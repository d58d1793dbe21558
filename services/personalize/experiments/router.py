"""``/v1/experiments``: compare strategies on a placement with sticky arms (admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy import Engine
from sqlmodel import Session

from services.personalize.experiments import service
from services.personalize.experiments.schemas import ExperimentCreate, ExperimentReport
from shared.auth import Principal, Scope
from shared.db import session_scope
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError
from shared.web.responses import error_responses

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
ExperimentId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _call(engine: Engine, tenant_id: int, work: Callable[[Session], int]) -> ExperimentReport:
    try:
        with session_scope(engine) as session:
            experiment_id = work(session)
            return service.experiment_report(
                session, tenant_id=tenant_id, experiment_id=experiment_id
            )
    except service.ExperimentDoesNotExist as exc:
        errors = [{"field": "experiment_id", "message": "not found"}]
        raise ApiError(404, f"no experiment {exc}", errors=errors) from None
    except service.PlacementBusy as exc:
        errors = [{"field": "placement", "message": "already runs an experiment"}]
        raise ApiError(409, f"placement {exc} runs an experiment", errors=errors) from None


@router.post(
    "",
    status_code=201,
    summary="Start an experiment",
    description="Customers are split between the arms by a sticky hash of their id; the "
    "first arm is the control. One experiment runs per placement at a time. Needs `admin`.",
    response_model=ExperimentReport,
    responses=error_responses(409, 413),
)
async def create_experiment(
    body: ExperimentCreate, principal: AdminDep, database: DatabaseDep, response: Response
) -> ExperimentReport:
    def work(session: Session) -> int:
        created = service.create_experiment(session, tenant_id=principal.tenant_id, body=body)
        assert created.id is not None
        return created.id

    report = await database.run(_call, database.engine, principal.tenant_id, work)
    response.headers["Location"] = f"/v1/experiments/{report.experiment_id}"
    return report


@router.get(
    "/{experiment_id}",
    summary="An experiment's report",
    description="Per arm: exposed customers, conversions, revenue; each arm against the "
    "control with a fixed-horizon interval, an always-valid sequential test (safe to read "
    "every day), the CUPED-adjusted difference (pre-period spend) and a sample-ratio check.",
    response_model=ExperimentReport,
    responses=error_responses(404),
)
async def read_experiment(
    experiment_id: ExperimentId, principal: AdminDep, database: DatabaseDep
) -> ExperimentReport:
    return await database.run(_call, database.engine, principal.tenant_id, lambda _: experiment_id)


@router.post(
    "/{experiment_id}/stop",
    summary="Stop an experiment",
    description="The placement goes back to its own strategy; the report stays readable.",
    response_model=ExperimentReport,
    responses=error_responses(404),
)
async def stop_experiment(
    experiment_id: ExperimentId, principal: AdminDep, database: DatabaseDep
) -> ExperimentReport:
    def work(session: Session) -> int:
        service.stop_experiment(session, tenant_id=principal.tenant_id, experiment_id=experiment_id)
        return experiment_id

    return await database.run(_call, database.engine, principal.tenant_id, work)
