"""``/v1/segments``: the active segmentation's segments, their members and their history."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.segmentations.repository import active_run
from services.segment.segmentations.schemas import error_responses
from services.segment.segments import repository as repo
from services.segment.segments.schemas import (
    DailyFlow,
    MemberPublic,
    MembersPage,
    RunSize,
    SegmentHistory,
    SegmentsResponse,
    segment_public,
)
from shared.auth import Principal, Scope
from shared.web.csv_export import csv_bytes
from shared.web.deps import Database, DatabaseDep, require
from shared.web.errors import ApiError

router = APIRouter(prefix="/v1/segments", tags=["segments"])
ReaderDep = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]
SegmentKey = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[^\x00]+$", description="A segment key")
]
NO_ACTIVE_RUN = "no active segmentation yet: POST /v1/segmentations to train one"


def _read_segments(engine: Engine, tenant_id: int) -> SegmentsResponse:
    with Session(engine) as session:
        run = active_run(session, tenant_id=tenant_id)
        if run is None:
            return SegmentsResponse(segmentation_id=None, message=NO_ACTIVE_RUN)
        rows = repo.segments_of_run(session, tenant_id=tenant_id, run_id=run["id"])
        currency = repo.shop_currency(session, tenant_id=tenant_id)
    total = sum(row.size for row in rows)
    return SegmentsResponse(
        segmentation_id=run["id"],
        currency=currency,
        algorithm=run["algorithm"],
        feature_set=run["feature_set"],
        activated_at=run["activated_at"],
        total_customers=total,
        message=None if rows else "the active segmentation has no segments",
        segments=[segment_public(row, total, currency) for row in rows],
    )


@router.get(
    "",
    summary="The active segmentation's segments",
    description="Key, name, description, size and share, profile (features by lift), "
    "rules with their fidelity, and value statistics of every segment of the tenant's "
    "active segmentation. With none active the answer is 200 with an empty list, "
    "`segmentation_id: null` and a `message` saying how to train one. Needs `segments:read`.",
    response_model=SegmentsResponse,
    responses=error_responses(),
)
async def read_segments(principal: ReaderDep, database: DatabaseDep) -> SegmentsResponse:
    return await database.run(_read_segments, database.engine, principal.tenant_id)


def _unknown_segment(key: str) -> ApiError:
    return ApiError(
        404,
        f"no segment {key!r} in the active segmentation",
        errors=[{"field": "key", "message": "not found"}],
    )


def _read_members(engine: Engine, tenant_id: int, key: str, after: int, limit: int) -> MembersPage:
    with Session(engine) as session:
        run = active_run(session, tenant_id=tenant_id)
        if run is None:
            raise ApiError(404, NO_ACTIVE_RUN)
        if not repo.segment_in_run(session, tenant_id=tenant_id, run_id=run["id"], key=key):
            raise _unknown_segment(key)
        rows = repo.members(session, tenant_id=tenant_id, key=key, after=after, limit=limit + 1)
    page = rows[:limit]
    return MembersPage(
        segment_key=key,
        items=[MemberPublic.model_validate(row) for row in page],
        next=page[-1]["customer_pk"] if len(rows) > limit else None,
    )


@router.get(
    "/{key}/customers",
    summary="A segment's members, page by page",
    description="The customers currently in the segment, in a stable order, with since "
    "when, their CLV and P(alive). Pass the answer's `next` as `after` for the next "
    "page; every member appears exactly once across pages. Needs `segments:read`.",
    response_model=MembersPage,
    responses=error_responses(404),
)
async def read_segment_customers(
    key: SegmentKey,
    principal: ReaderDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="a `next` cursor")] = 0,
) -> MembersPage:
    return await database.run(
        _read_members, database.engine, principal.tenant_id, key, after, limit
    )


EXPORT_PAGE = 5_000
EXPORT_COLUMNS = ("customer_id", "since", "clv", "p_alive")


def _check_segment(engine: Engine, tenant_id: int, key: str) -> None:
    with Session(engine) as session:
        run = active_run(session, tenant_id=tenant_id)
        if run is None:
            raise ApiError(404, NO_ACTIVE_RUN)
        if not repo.segment_in_run(session, tenant_id=tenant_id, run_id=run["id"], key=key):
            raise _unknown_segment(key)


def _member_page(engine: Engine, tenant_id: int, key: str, after: int) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return repo.members(session, tenant_id=tenant_id, key=key, after=after, limit=EXPORT_PAGE)


async def _csv_lines(database: Database, tenant_id: int, key: str) -> AsyncIterator[bytes]:
    yield csv_bytes([EXPORT_COLUMNS])
    after = 0
    while True:
        rows = await database.run(_member_page, database.engine, tenant_id, key, after)
        yield csv_bytes([[row[column] for column in EXPORT_COLUMNS] for row in rows])
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1]["customer_pk"]


@router.get(
    "/{key}/customers.csv",
    summary="A segment's members as CSV",
    description="Every current member of the segment (`customer_id`, `since`, `clv`, "
    "`p_alive`), for a spreadsheet or a campaign tool. Text that a spreadsheet would read "
    "as a formula (starting with `=`, `+`, `-`, `@`, a tab or a line break) is written "
    "behind a `'`, so it opens as plain text. Needs `segments:read`.",
    response_class=StreamingResponse,
    responses={
        **error_responses(404),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
)
async def read_segment_customers_csv(
    key: SegmentKey, principal: ReaderDep, database: DatabaseDep
) -> StreamingResponse:
    await database.run(_check_segment, database.engine, principal.tenant_id, key)
    filename = re.sub(r"[^A-Za-z0-9_-]", "_", key)
    return StreamingResponse(
        _csv_lines(database, principal.tenant_id, key),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="segment-{filename}.csv"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def _read_history(engine: Engine, tenant_id: int, key: str) -> SegmentHistory:
    with Session(engine) as session:
        sizes = repo.size_history(session, tenant_id=tenant_id, key=key)
        if not sizes:
            raise ApiError(
                404,
                f"no segmentation run has a segment {key!r}",
                errors=[{"field": "key", "message": "not found"}],
            )
        flows = repo.daily_flows(session, tenant_id=tenant_id, key=key)
    return SegmentHistory(
        segment_key=key,
        sizes=[RunSize.model_validate(row) for row in sizes],
        flows=[DailyFlow.model_validate(row) for row in flows],
    )


@router.get(
    "/{key}/history",
    summary="A segment's size over runs and its daily entries and exits",
    description="The size in every succeeded run that had this key (oldest first), and "
    "how many customers entered and left it per day over the last 90 days. "
    "Needs `segments:read`.",
    response_model=SegmentHistory,
    responses=error_responses(404),
)
async def read_segment_history(
    key: SegmentKey, principal: ReaderDep, database: DatabaseDep
) -> SegmentHistory:
    return await database.run(_read_history, database.engine, principal.tenant_id, key)
