"""Scheduled retrains (Celery beat) and runs asked for while their tenant is busy."""

from __future__ import annotations

import orjson
from sqlalchemy import text
from sqlmodel import Session

from services.segment.settings import SegmentSettings
from shared.contracts import SEGMENT_TRAIN_SEGMENTATION
from shared.outbox import enqueue

SCHEDULER_LOCK = (0x5E7, 0)  # one scheduler at a time, whatever the number of beats

_DUE = text(
    """
    SELECT t.id FROM tenant t
    WHERE EXISTS (SELECT 1 FROM customer c WHERE c.tenant_id = t.id)
      AND NOT EXISTS (SELECT 1 FROM segmentation_run r WHERE r.tenant_id = t.id
                      AND r.status IN ('pending', 'running'))
      AND NOT EXISTS (SELECT 1 FROM segmentation_run r WHERE r.tenant_id = t.id
                      AND r.status = 'succeeded'
                      AND r.finished_at > now() - make_interval(secs => :every))
    ORDER BY t.id
    """
)
_CREATE = text(
    """
    INSERT INTO segmentation_run (tenant_id, status, algorithm, params, feature_set, seed)
    VALUES (:tenant, 'pending', :algorithm, CAST(:params AS jsonb), :feature_set, :seed)
    RETURNING id
    """
)


def schedule_retrains(session: Session, settings: SegmentSettings) -> list[int]:
    """Create a run for every tenant whose last one is older than the schedule; their ids.

    Several beats (or a manual trigger beside one) may call this at once: the advisory
    lock lets one through and the others return without doing anything.
    """
    got = session.execute(
        text("SELECT pg_try_advisory_xact_lock(:a, :b)"),
        {"a": SCHEDULER_LOCK[0], "b": SCHEDULER_LOCK[1]},
    ).scalar_one()
    if not got:
        return []
    params = {"k": settings.segment_k, "promote": "auto", "scheduled": True}
    created = []
    for tenant_id in session.execute(_DUE, {"every": settings.segment_retrain_every_s}).scalars():
        run_id = session.execute(
            _CREATE,
            {
                "tenant": tenant_id,
                "algorithm": settings.segment_algorithm,
                "params": orjson.dumps(params).decode(),
                "feature_set": settings.segment_feature_set,
                "seed": settings.segment_seed,
            },
        ).scalar_one()
        enqueue(
            session, tenant_id=tenant_id, task_name=SEGMENT_TRAIN_SEGMENTATION, subject_ids=[run_id]
        )
        created.append(int(run_id))
    return created


def retry_later(session: Session, *, tenant_id: int, run_id: int, delay_s: int = 30) -> None:
    """Ask for the run again in ``delay_s`` (its tenant is training another one now)."""
    session.execute(
        text(
            "INSERT INTO outbox (tenant_id, task_name, subject_id, available_at) "
            "VALUES (:t, :task, :run, now() + make_interval(secs => :delay)) "
            "ON CONFLICT (task_name, subject_id) WHERE published_at IS NULL DO NOTHING"
        ),
        {"t": tenant_id, "task": SEGMENT_TRAIN_SEGMENTATION, "run": run_id, "delay": delay_s},
    )
