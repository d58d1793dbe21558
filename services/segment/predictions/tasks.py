"""The prediction long job and its schedule, registered in ``services.segment.worker``."""

from __future__ import annotations

from celery import Celery
from sqlalchemy import Engine

from services.segment.predictions.pipeline import train_prediction
from services.segment.predictions.runs import give_up
from services.segment.predictions.schedule import schedule_predictions
from services.segment.settings import SegmentSettings
from shared.contracts import SEGMENT_SCHEDULE_PREDICTIONS, SEGMENT_TRAIN_PREDICTION
from shared.db import session_scope
from shared.reliable import Subject, WorkerEngine, long_job


def register(app: Celery, engine: WorkerEngine, settings: SegmentSettings) -> None:
    """The training job on ``segment.runs`` and, when retrains are on, their beat entry."""

    @long_job(
        app,
        SEGMENT_TRAIN_PREDICTION,
        engine=engine,
        max_attempts=settings.max_task_attempts,
        give_up=give_up,
    )
    def _train(db: Engine, subject: Subject) -> None:
        train_prediction(db, settings, subject.subject_id)

    @app.task(name=SEGMENT_SCHEDULE_PREDICTIONS, acks_late=True)
    def _schedule() -> list[int]:
        # A timer, not outbox work: a lost tick only delays the check to the next one.
        with session_scope(engine.get()) as session:
            return schedule_predictions(session, settings)

    if settings.prediction_retrain_every_s:
        schedule = dict(app.conf.beat_schedule or {})
        schedule["retrain-predictions"] = {
            "task": SEGMENT_SCHEDULE_PREDICTIONS,
            "schedule": float(min(settings.prediction_retrain_every_s, 3600)),
        }
        app.conf.beat_schedule = schedule
