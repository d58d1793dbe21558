"""Scheduled retrains of the prediction models (Celery beat), as for segmentations: a run
of each model for every tenant whose last one is older than the schedule."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlmodel import Session

from services.segment.predictions.data import MODELS
from services.segment.predictions.runs import PREDICTION, PredictionParams, create_run
from services.segment.settings import SegmentSettings
from shared.runs import IN_FLIGHT, RunLimitReached, RunStatus

log = logging.getLogger(__name__)
SCHEDULE = "schedule"

# Tenants with customers who bought, and no recent or in-flight run of the model.
_DUE = text(
    """
    SELECT t.id FROM tenant t
    WHERE EXISTS (SELECT 1 FROM orders o WHERE o.tenant_id = t.id)
      AND NOT EXISTS (SELECT 1 FROM prediction_run r WHERE r.tenant_id = t.id
                      AND r.model = :model AND r.status = ANY(:in_flight))
      AND NOT EXISTS (SELECT 1 FROM prediction_run r WHERE r.tenant_id = t.id
                      AND r.model = :model AND r.status = :succeeded AND r.active
                      AND r.finished_at > now() - make_interval(secs => :every))
    ORDER BY t.id
    """
)


def schedule_predictions(session: Session, settings: SegmentSettings) -> list[int]:
    """Create the due runs (one scheduler at a time: the kind's lock); their ids."""
    if not settings.prediction_retrain_every_s or not PREDICTION.try_scheduler_lock(session):
        return []
    created = []
    for model in MODELS:
        params = PredictionParams.resolve(settings, model=model, requested_by=SCHEDULE)
        due = session.execute(
            _DUE,
            {
                "model": model,
                "every": settings.prediction_retrain_every_s,
                "in_flight": [str(status) for status in IN_FLIGHT],
                "succeeded": RunStatus.SUCCEEDED,
            },
        ).scalars()
        for tenant_id in due.all():
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
                log.info("tenant %d is at its limit of prediction runs; not scheduled", tenant_id)
    return created
