"""Attribution of one tenant's orders in a window, optionally within one segment."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from services.segment.attribution.models import attribute
from services.segment.attribution.repository import load_journeys
from services.segment.attribution.schemas import AttributionResponse, channels_public
from services.segment.segmentations.repository import active_run
from services.segment.segments import repository as segments


class SegmentDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    pass


def attribution(
    session: Session, *, tenant_id: int, start: datetime, end: datetime, segment: str | None
) -> AttributionResponse:
    if segment is not None:
        run = active_run(session, tenant_id=tenant_id)
        if run is None or not segments.segment_in_run(
            session, tenant_id=tenant_id, run_id=run["id"], key=segment
        ):
            raise SegmentDoesNotExist(segment)
    data = load_journeys(session, tenant_id=tenant_id, start=start, end=end, segment=segment)
    result = attribute(data.journeys)
    return AttributionResponse(
        start=start,
        end=end,
        segment=segment,
        journeys=result.journeys,
        conversions=result.conversions,
        revenue=round(result.revenue, 2),
        orders_without_touches=data.orders_without_touches,
        revenue_without_touches=round(data.revenue_without_touches, 2),
        channels=channels_public(result),
    )
