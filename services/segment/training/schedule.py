"""Scheduled retrains (Celery beat): a run for every tenant whose last one is too old."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlmodel import Session

from services.segment.segmentations.runs import SEGMENTATION, SegmentationParams, create_run
from services.segment.settings import SegmentSettings
from services.segment.training.fingerprint import unchanged_active_run
from shared.runs import IN_FLIGHT, RunLimitReached, RunStatus

log = logging.getLogger(__name__)
SCHEDULE = "schedule"  # a scheduled run's ``requested_by``

_DUE = text(
    """
    SELECT t.id FROM tenant t
    WHERE EXISTS (SELECT 1 FROM customer c WHERE c.tenant_id = t.id)
      AND NOT EXISTS (SELECT 1 FROM segmentation_run r WHERE r.tenant_id = t.id
                      AND r.status = ANY(:in_flight))
      AND NOT EXISTS (SELECT 1 FROM segmentation_run r WHERE r.tenant_id = t.id
                      AND r.status = :succeeded_status
                      AND r.finished_at > now() - make_interval(secs => :every))
    ORDER BY t.id
    """
)


def schedule_retrains(session: Session, settings: SegmentSettings) -> list[int]:
    """Create a run for every tenant whose last one is older than the schedule, unless
    nothing it would train on changed since its active run; their ids.

    Several beats (or a manual trigger beside one) may call this at once: the kind's
    scheduler lock lets one through and the others return without doing anything. A
    tenant at its limit of runs in flight (one asked for through the API meanwhile) is
    left to the next check.
    """
    if not SEGMENTATION.try_scheduler_lock(session):
        return []
    params = SegmentationParams.resolve(settings, requested_by=SCHEDULE)
    due = session.execute(
        _DUE,
        {
            "every": settings.segment_retrain_every_s,
            "in_flight": [str(status) for status in IN_FLIGHT],
            "succeeded_status": RunStatus.SUCCEEDED,
        },
    ).scalars()
    created = []
    for tenant_id in due.all():
        if unchanged_active_run(session, tenant_id=tenant_id, params=params) is not None:
            continue  # the same records and parameters would train the same segmentation
        try:
            created.append(
                create_run(
                    session,
                    tenant_id=tenant_id,
                    params=params,
                    max_in_flight=settings.segment_max_runs_in_flight,
                )
            )
        except RunLimitReached:
            log.info("tenant %d is at its limit of runs in flight; not scheduled", tenant_id)
    return created
