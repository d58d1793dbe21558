"""The segment service's Celery workers: one app, run as two workers on two queues.

* ``celery -A services.segment.worker worker -Q segment``: real-time work (a customer's
  refresh seconds after an order, erasures, the retrain check), short tasks only;
* ``celery -A services.segment.worker worker -Q segment.runs``: the long jobs (trainings,
  activations), on their own queue (`shared.contracts.queue_for`), so that a refresh
  never waits behind an hour of training.

Beat (``celery -A services.segment.worker beat``) sends the scheduled retrain check.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine
from sqlmodel import Session

from services.segment import erasure as _erasure  # noqa: F401 (registers segment.erase_customer)
from services.segment import tasks
from services.segment.anomalies import runs as anomaly_runs
from services.segment.anomalies import tasks as anomaly_tasks
from services.segment.anomalies.schedule import schedule_detections
from services.segment.predictions import tasks as predictions
from services.segment.segmentations.runs import give_up
from services.segment.settings import get_segment_settings
from services.segment.training.schedule import schedule_retrains
from services.segment.webhooks.delivery import deliver_webhooks
from shared.celery_app import create_celery_app
from shared.contracts import (
    SEGMENT_ACTIVATE_SEGMENTATION,
    SEGMENT_DELIVER_WEBHOOKS,
    SEGMENT_DETECT_ANOMALIES,
    SEGMENT_REFRESH_CUSTOMERS,
    SEGMENT_SCHEDULE_ANOMALIES,
    SEGMENT_SCHEDULE_RETRAINS,
    SEGMENT_TRAIN_SEGMENTATION,
)
from shared.db import create_db_engine, session_scope
from shared.logging import configure_logging
from shared.reliable import Subject, WorkerEngine, long_job, reliable_task

settings = get_segment_settings()
configure_logging(settings.log_level)
app = create_celery_app("segmenta-segment", settings)
engine = WorkerEngine(lambda: create_db_engine(settings, pool_size=2))
attempts = settings.max_task_attempts

if settings.segment_retrain_every_s:
    # The check is cheap and creates a run only for tenants that are due: run it at least
    # hourly, so a due retrain starts within the hour.
    app.conf.beat_schedule = {
        "retrain-segmentations": {
            "task": SEGMENT_SCHEDULE_RETRAINS,
            "schedule": float(min(settings.segment_retrain_every_s, 3600)),
        }
    }
if settings.segment_anomaly_every_s:
    app.conf.beat_schedule = {
        **(app.conf.beat_schedule or {}),
        "detect-anomalies": {
            "task": SEGMENT_SCHEDULE_ANOMALIES,
            "schedule": float(min(settings.segment_anomaly_every_s, 3600)),
        },
    }

predictions.register(app, engine, settings)  # churn and purchase-propensity runs
if settings.webhook_every_s:
    # Ticks that waited long in the queue (a worker down) are dropped rather than run in
    # a burst; one tick does all the due work anyway.
    app.conf.beat_schedule = {
        **(app.conf.beat_schedule or {}),
        "deliver-webhooks": {
            "task": SEGMENT_DELIVER_WEBHOOKS,
            "schedule": settings.webhook_every_s,
            "options": {"expires": max(60.0, 10 * settings.webhook_every_s)},
        },
    }


# A short task: its effect and its outbox rows' deletion commit together.
@reliable_task(app, SEGMENT_REFRESH_CUSTOMERS, engine=engine, max_attempts=attempts)
def _refresh(session: Session, subjects: Sequence[Subject]) -> None:
    tasks.refresh(session, subjects)


# Long jobs, routed to ``segment.runs``: minutes of work in their own sessions, driven by
# the run row; a run that fails (or whose worker keeps dying) is marked failed by `give_up`.
@long_job(app, SEGMENT_TRAIN_SEGMENTATION, engine=engine, max_attempts=attempts, give_up=give_up)
def _train(db: Engine, subject: Subject) -> None:
    tasks.train(db, settings, subject)


@long_job(app, SEGMENT_ACTIVATE_SEGMENTATION, engine=engine, max_attempts=attempts)
def _activate(db: Engine, subject: Subject) -> None:
    tasks.activate(db, subject)


@app.task(name=SEGMENT_SCHEDULE_RETRAINS, acks_late=True)
def _schedule() -> list[int]:
    # A timer, not outbox work: a lost tick only delays the check to the next one.
    with session_scope(engine.get()) as session:
        return schedule_retrains(session, settings)


@app.task(name=SEGMENT_DELIVER_WEBHOOKS, acks_late=True)
def _deliver_webhooks() -> dict[str, int]:
    # A timer too: the delivery rows are the ledger (`services.segment.webhooks.delivery`).
    return deliver_webhooks(engine.get(), settings)


@long_job(
    app,
    SEGMENT_DETECT_ANOMALIES,
    engine=engine,
    max_attempts=attempts,
    give_up=anomaly_runs.give_up,
)
def _detect_anomalies(db: Engine, subject: Subject) -> None:
    anomaly_tasks.detect(db, settings, subject)


@app.task(name=SEGMENT_SCHEDULE_ANOMALIES, acks_late=True)
def _schedule_anomalies() -> list[int]:
    with session_scope(engine.get()) as session:
        return schedule_detections(session, settings)
