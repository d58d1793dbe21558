"""``/v1/segments``: the active segmentation's segments, their members and their history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.segmentations.repository import active_run
from services.segment.segmentations.router import SegmentSettingsDep
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
from shared.cursors import customer_after, customer_cursor
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError

router = APIRouter(prefix="/v1/segments", tags=["segments"])
ReaderDep = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]
SegmentKey = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[^\x00]+$", description="A segment key")
]
NO_ACTIVE_RUN = "no active segmentation yet: POST /v1/segmentations to train one"


def _read_segments(engine: Engine, tenant_id: int, default_currency: str) -> SegmentsResponse:
    with Session(engine) as session:
        run = active_run(session, tenant_id=tenant_id)
        if run is None:
            return SegmentsResponse(
                segmentation_id=None, currency=default_currency, message=NO_ACTIVE_RUN
            )
        rows = repo.segments_of_run(session, tenant_id=tenant_id, run_id=run["id"])
        currency = repo.shop_currency(session, tenant_id=tenant_id) or default_currency
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
async def read_segments(
    principal: ReaderDep, database: DatabaseDep, settings: SegmentSettingsDep
) -> SegmentsResponse:
    return await database.run(
        _read_segments, database.engine, principal.tenant_id, settings.segment_currency
    )


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
        after_pk = customer_after(session, after, field="after")
        rows = repo.members(session, tenant_id=tenant_id, key=key, after=after_pk, limit=limit + 1)
        page = rows[:limit]
        more = len(rows) > limit
        return MembersPage(
            segment_key=key,
            items=[MemberPublic.model_validate(row) for row in page],
            next=customer_cursor(session, page[-1]["customer_pk"]) if more else None,
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
