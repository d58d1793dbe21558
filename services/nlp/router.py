"""``POST /v1/analyze`` (a live mood reading) and ``GET /v1/analyses/...`` (stored ones)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy import Engine
from sqlmodel import Session

from services.nlp import repository as repo
from services.nlp.analysis.analyzer import Analyzer
from services.nlp.schemas import AnalysesResponse, AnalyzeRequest, AnalyzeResponse, TextResult
from shared.auth import Principal, Scope
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError
from shared.web.responses import error_responses

router = APIRouter(prefix="/v1", tags=["sentiment"])
KINDS = {"reviews": "review", "transcripts": "transcript"}


def get_analyzer(request: Request) -> Analyzer:
    analyzer: Analyzer = request.app.state.analyzer
    return analyzer


@router.post(
    "/analyze",
    summary="Score a few texts now",
    description="Synchronous sentiment of up to 32 texts (a support desk's live mood "
    "reading). Nothing is stored. Needs `transcripts:write` or `admin`.",
    response_model=AnalyzeResponse,
    responses=error_responses(413),
)
async def create_analysis(
    body: AnalyzeRequest,
    _: Annotated[Principal, Depends(require(Scope.TRANSCRIPTS_WRITE))],
    analyzer: Annotated[Analyzer, Depends(get_analyzer)],
    request: Request,
) -> AnalyzeResponse:
    # Model inference is CPU work: one request at a time in a thread of its own.
    results = await request.app.state.inference.run(analyzer.texts, body.texts)
    return AnalyzeResponse(
        backend=analyzer.backend.name,
        model_version=analyzer.model_version,
        results=[TextResult.model_validate(r.public()) for r in results],
    )


def _read(engine: Engine, tenant_id: int, kind: str, source_id: str) -> AnalysesResponse:
    with Session(engine) as session:
        analyses = repo.stored_analyses(
            session, tenant_id=tenant_id, kind=kind, source_id=source_id
        )
        if not analyses:
            exists = repo.source_exists(
                session, tenant_id=tenant_id, kind=kind, source_id=source_id
            )
            message = f"{kind} {source_id!r} is not analysed yet" if exists else None
            raise ApiError(404, message or f"no {kind} {source_id!r}")
    return AnalysesResponse.model_validate(
        {"source_kind": kind, "source_id": source_id, "analyses": analyses}
    )


@router.get(
    "/analyses/{kind}/{source_id}",
    summary="The stored analysis of a review or transcript",
    description="Every analysis of the caller's review or transcript (by the id it was "
    "sent with), one per model version, newest first. Needs `segments:read` or `admin`.",
    response_model=AnalysesResponse,
    responses=error_responses(
        404, descriptions={404: "No such review/transcript, or not analysed yet"}
    ),
)
async def read_analyses(
    kind: Literal["reviews", "transcripts"],
    source_id: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00]*$")],
    principal: Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))],
    database: DatabaseDep,
) -> AnalysesResponse:
    return await database.run(_read, database.engine, principal.tenant_id, KINDS[kind], source_id)
