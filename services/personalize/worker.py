"""The personalize service's Celery worker: ``celery -A services.personalize.worker worker
-Q personalize``. Beat (``celery -A services.personalize.worker beat``) sends the drain of
the decision log every second.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from celery import Task
from redis import Redis
from sqlalchemy import Engine
from sqlmodel import Session

from services.personalize import cache_guard, tasks
from services.personalize import erasure as _erasure  # noqa: F401 (registers personalize.erase_customer)
from services.personalize.attribution import attribute_orders
from services.personalize.recommend import runs as recommender_runs
from services.personalize.recommend import tasks as recommend_tasks
from services.personalize.recommend.train import train as train_recommender
from services.personalize.settings import get_personalize_settings
from shared.celery_app import create_celery_app
from shared.contracts import (
    PERSONALIZE_APPLY_FEEDBACK,
    PERSONALIZE_ATTRIBUTE_ORDERS,
    PERSONALIZE_DRAIN_DECISIONS,
    PERSONALIZE_REFRESH_CUSTOMERS,
    PERSONALIZE_REFRESH_PLACEMENTS,
    PERSONALIZE_REFRESH_SEGMENTATION,
    PERSONALIZE_SCHEDULE_RECOMMENDERS,
    PERSONALIZE_TRAIN_RECOMMENDER,
)
from shared.db import create_db_engine, session_scope
from shared.logging import configure_logging
from shared.reliable import PerProcess, Subject, WorkerEngine, long_job, reliable_task

settings = get_personalize_settings()
configure_logging(settings.log_level)
app = create_celery_app("segmenta-personalize", settings)
engine = WorkerEngine(lambda: create_db_engine(settings, pool_size=2))
redis = PerProcess(lambda: Redis.from_url(settings.require_redis_url(), socket_timeout=10))
secret = settings.secret_key.get_secret_value()
attempts = settings.max_task_attempts

app.conf.beat_schedule = {
    # A tick that waited in the queue behind a backlog for 5 s is dropped (the next one
    # comes a second later), so ticks do not pile up ahead of the learning queued with
    # them. (Expiry compares beat's clock with the worker's: well above their skew.)
    "drain-decisions": {
        "task": PERSONALIZE_DRAIN_DECISIONS,
        "schedule": 1.0,
        "options": {"expires": 5.0},
    },
    "attribute-orders": {"task": PERSONALIZE_ATTRIBUTE_ORDERS, "schedule": 5.0},
    "schedule-recommenders": {
        "task": PERSONALIZE_SCHEDULE_RECOMMENDERS,
        "schedule": settings.personalize_recs_schedule_s,
    },
}


# Short tasks: their effect and their outbox rows' deletion commit together.
@reliable_task(app, PERSONALIZE_REFRESH_CUSTOMERS, engine=engine, max_attempts=attempts)
def _customers(session: Session, subjects: Sequence[Subject]) -> None:
    tasks.refresh_customers(session, redis.get(), secret, subjects)


@reliable_task(app, PERSONALIZE_REFRESH_SEGMENTATION, engine=engine, max_attempts=attempts)
def _segmentation(session: Session, subjects: Sequence[Subject]) -> None:
    tasks.refresh_segmentation(session, redis.get(), secret, subjects)


@reliable_task(app, PERSONALIZE_REFRESH_PLACEMENTS, engine=engine, max_attempts=attempts)
def _placements(session: Session, subjects: Sequence[Subject]) -> None:
    tasks.refresh_placements(session, redis.get(), subjects)


@reliable_task(app, PERSONALIZE_APPLY_FEEDBACK, engine=engine, max_attempts=attempts)
def _feedback(session: Session, subjects: Sequence[Subject]) -> None:
    tasks.apply_feedback(session, redis.get(), settings, subjects)


@app.task(name=PERSONALIZE_DRAIN_DECISIONS, acks_late=True, bind=True)
def _drain(self: Task[[], int]) -> int:
    """A timer, not outbox work: the stream itself holds what is left to drain. The
    worker's node name (``-n``, kept across restarts) names its consumer in the stream.
    Batch after batch until the stream is empty or the slice is spent: behind a backlog,
    the conversions queued meanwhile are learnt between ticks, not after the backlog."""
    consumer = self.request.hostname or tasks.CONSUMER
    with session_scope(engine.get()) as session:
        cache_guard.rebuild_if_lost(session, redis.get(), secret)  # Redis lost its data
    drained, deadline = 0, time.monotonic() + settings.personalize_drain_slice_s
    while True:
        with session_scope(engine.get()) as session:
            entries = tasks.drain_decisions(session, redis.get(), settings, consumer)
        tasks.acknowledge(redis.get(), entries)  # only after the commit
        drained += len(entries)
        if len(entries) < settings.personalize_drain_batch or time.monotonic() > deadline:
            return drained


@app.task(name=PERSONALIZE_ATTRIBUTE_ORDERS, acks_late=True)
def _attribute() -> None:
    """A timer: the cursor row says where the last run stopped."""
    window_h = settings.personalize_conversion_window_h
    while True:
        with session_scope(engine.get()) as session:
            if not attribute_orders(session, window_h=window_h):
                return


@long_job(
    app,
    PERSONALIZE_TRAIN_RECOMMENDER,
    engine=engine,
    max_attempts=attempts,
    give_up=recommender_runs.give_up,
)
def _train_recommender(engine: Engine, subject: Subject) -> None:
    train_recommender(engine, redis.get(), secret, subject)


@app.task(name=PERSONALIZE_SCHEDULE_RECOMMENDERS, acks_late=True)
def _schedule_recommenders() -> int:
    """A timer: the runs table says which tenants are due."""
    return len(recommend_tasks.schedule_retrains(engine.get(), settings))
