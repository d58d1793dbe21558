"""``/v1/segmentations/{id}/report`` and ``/v1/segmentations/{id}/changes``: a run as a
page to hand on, and what changed against another run."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.segmentations import repository as repo
from services.segment.segmentations.changes import RunChanges, RunNotComparable, run_changes
from services.segment.segmentations.report import render_report
from services.segment.segmentations.router import (
    ReaderDep,
    RunId,
    SegmentSettingsDep,
    not_found,
)
from services.segment.segmentations.schemas import error_responses
from shared.web.deps import DatabaseDep
from shared.web.errors import ApiError
from shared.web.responses import json_error_responses

router = APIRouter(prefix="/v1/segmentations", tags=["segmentations"])
# The report is a page with its own style and no script at all.
REPORT_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
MAX_SAMPLE = 1_000


def _report(engine: Engine, tenant_id: int, run_id: int, currency: str) -> str:
    with Session(engine) as session:
        run = repo.read_run(session, tenant_id=tenant_id, run_id=run_id)
        if run is None:
            raise not_found(run_id)
        return render_report(session, tenant_id=tenant_id, run=run, default_currency=currency)


@router.get(
    "/{run_id}/report",
    summary="A segmentation run as an HTML report",
    description="One section per segment: name, size, value, the rule with its coverage and "
    "precision, the profile in words, CLV with its uncertainty (for the active run) and the "
    "change since the previous run. A page to save or print (no script). Needs "
    "`segments:read`.",
    response_class=HTMLResponse,
    responses=json_error_responses(404),
)
async def read_segmentation_report(
    run_id: RunId, principal: ReaderDep, database: DatabaseDep, settings: SegmentSettingsDep
) -> HTMLResponse:
    page = await database.run(
        _report, database.engine, principal.tenant_id, run_id, settings.segment_currency
    )
    return HTMLResponse(page, headers=REPORT_HEADERS)


def _changes(engine: Engine, tenant_id: int, run_id: int, against: int, sample: int) -> RunChanges:
    with Session(engine) as session:
        for wanted in (run_id, against):
            if repo.read_run(session, tenant_id=tenant_id, run_id=wanted) is None:
                raise ApiError(
                    404,
                    f"no segmentation run {wanted}",
                    errors=[
                        {
                            "field": "segmentation_id" if wanted == run_id else "against",
                            "message": "not found",
                        }
                    ],
                )
        try:
            return run_changes(
                session, tenant_id=tenant_id, run_id=run_id, against=against, sample=sample
            )
        except RunNotComparable as exc:
            raise ApiError(
                409, exc.message, errors=[{"field": exc.field, "message": exc.message}]
            ) from None


@router.get(
    "/{run_id}/changes",
    summary="Who moves from which segment to which, against another run",
    description="Both runs assign the tenant's current customers; every (from, to) pair of "
    "segments with its number of customers, some of their ids, and why they moved: the "
    "features whose standardized means differ most between the segment left and the one "
    "entered. Both must be succeeded runs of the tenant on one feature set. Needs "
    "`segments:read`.",
    response_model=RunChanges,
    responses=error_responses(404, 409),
)
async def read_segmentation_changes(
    run_id: RunId,
    principal: ReaderDep,
    database: DatabaseDep,
    against: Annotated[
        int, Query(ge=1, le=2**63 - 1, description="the run to compare with (the 'from' side)")
    ],
    sample: Annotated[
        int, Query(ge=0, le=MAX_SAMPLE, description="customer ids listed per pair")
    ] = 20,
) -> RunChanges:
    return await database.run(
        _changes, database.engine, principal.tenant_id, run_id, against, sample
    )
