"""The recommender's worker hooks: the training long job and the retrain schedule."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from services.personalize.recommend import runs
from services.personalize.settings import PersonalizeSettings
from shared.db import session_scope

log = logging.getLogger(__name__)


def schedule_retrains(engine: Engine, settings: PersonalizeSettings) -> list[int]:
    """Queue a run for each tenant whose recommender is due; the runs made."""
    every = timedelta(hours=settings.personalize_recs_retrain_h)
    made: list[int] = []
    with session_scope(engine) as session:
        if not runs.RECOMMENDER.try_scheduler_lock(session):
            return made
        for tenant_id in runs.due_tenants(session, now=datetime.now(UTC), every=every):
            params = runs.RecommenderParams.resolve(settings, requested_by="schedule")
            made.append(
                runs.create_run(
                    session,
                    tenant_id=tenant_id,
                    params=params,
                    max_in_flight=settings.personalize_recs_max_runs_in_flight,
                )
            )
    if made:
        log.info("scheduled %d recommender runs", len(made))
    return made
