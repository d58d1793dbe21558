"""Scheduled anomaly runs (Celery beat): one for every tenant whose last one is too old."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlmodel import Session

from services.segment.anomalies.params import AnomalyParams
from services.segment.anomalies.runs import ANOMALY, create_run
from services.segment.settings import SegmentSettings
from shared.runs import IN_FLIGHT, RunLimitReached, RunStatus

log = logging.getLogger(__name__)
SCHEDULE = "schedule"

_DUE = text(
    """
    SELECT t.id FROM tenant t
    WHERE EXISTS (SELECT 1 FROM customer c WHERE c.tenant_id = t.id)
      AND NOT EXISTS (SELECT 1 FROM anomaly_run r WHERE r.tenant_id = t.id
                      AND r.status = ANY(:in_flight))
      AND NOT EXISTS (SELECT 1 FROM anomaly_run r WHERE r.tenant_id = t.id
                      AND r.status = :succeeded_status
                      AND r.finished_at > now() - make_interval(secs => :every))
    ORDER BY t.id
    """
)


def schedule_detections(session: Session, settings: SegmentSettings) -> list[int]:
    """Create a run for every tenant that is due; their ids. One scheduler works at a
    time (the kind's scheduler lock); the others return without doing anything."""
    if not ANOMALY.try_scheduler_lock(session):
        return []
    due = session.execute(
        _DUE,
        {
            "every": settings.segment_anomaly_every_s,
            "in_flight": [str(status) for status in IN_FLIGHT],
            "succeeded_status": RunStatus.SUCCEEDED,
        },
    ).scalars()
    created = []
    for tenant_id in due.all():
        try:
            created.append(
                create_run(
                    session,
                    tenant_id=tenant_id,
                    params=AnomalyParams(requested_by=SCHEDULE),
                    max_in_flight=settings.segment_max_runs_in_flight,
                )
            )
        except RunLimitReached:
            log.info("tenant %d is at its limit of anomaly runs; not scheduled", tenant_id)
    return created
