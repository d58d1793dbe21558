"""``GET /v1/attribution``: which channels earned the orders of a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.attribution import service
from services.segment.attribution.schemas import AttributionResponse
from services.segment.segmentations.schemas import error_responses
from shared.auth import Principal, Scope
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError
from shared.web.times import IsoDatetime

router = APIRouter(prefix="/v1/attribution", tags=["attribution"])
ReaderDep = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]

DEFAULT_DAYS: Final = 90
# Journeys are cut in one query per request: a bound on the window bounds its cost.
MAX_DAYS: Final = 366


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = _utc(end) if end is not None else datetime.now(UTC)
    start = _utc(start) if start is not None else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ApiError(
            422, "invalid request", errors=[{"field": "to", "message": "must be after from"}]
        )
    if end - start > timedelta(days=MAX_DAYS):
        raise ApiError(
            422,
            "invalid request",
            errors=[{"field": "from", "message": f"the window is at most {MAX_DAYS} days"}],
        )
    return start, end


def _read(
    engine: Engine, tenant_id: int, start: datetime, end: datetime, segment: str | None
) -> AttributionResponse:
    with Session(engine) as session:
        try:
            return service.attribution(
                session, tenant_id=tenant_id, start=start, end=end, segment=segment
            )
        except service.SegmentDoesNotExist:
            raise ApiError(
                404,
                f"no segment {segment!r} in the active segmentation",
                errors=[{"field": "segment", "message": "not found"}],
            ) from None


@router.get(
    "",
    summary="Which channels earned the orders of a window",
    description="Journeys per customer up to each order in [`from`, `to`) (default: the "
    f"last {DEFAULT_DAYS} days, at most {MAX_DAYS}), built from events with a channel (UTM "
    "`utm_medium` of paid or email campaigns counts as `ads` or `email`), then the "
    "orders and their value credited to channels by last touch, first touch, linear, "
    "Markov-chain removal effect and Shapley values over channel sets. With `segment`, "
    "only the current members of that segment of the active segmentation. "
    "Needs `segments:read`.",
    response_model=AttributionResponse,
    responses=error_responses(404),
)
async def read_attribution(
    principal: ReaderDep,
    database: DatabaseDep,
    start: Annotated[IsoDatetime | None, Query(alias="from", description="window start")] = None,
    end: Annotated[
        IsoDatetime | None, Query(alias="to", description="window end (excluded)")
    ] = None,
    segment: Annotated[
        str | None, Query(min_length=1, max_length=32, pattern=r"^[^\x00]+$")
    ] = None,
) -> AttributionResponse:
    window = _window(start, end)
    return await database.run(_read, database.engine, principal.tenant_id, *window, segment)
