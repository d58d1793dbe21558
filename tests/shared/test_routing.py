"""Where each task goes: long jobs to their service's runs queue, the rest to its own."""

from __future__ import annotations

import pytest
from celery import Celery

from shared.celery_app import create_celery_app
from shared.contracts import (
    LONG_JOBS,
    QUEUES,
    SEGMENT_ACTIVATE_SEGMENTATION,
    SEGMENT_REFRESH_CUSTOMERS,
    SEGMENT_SCHEDULE_RETRAINS,
    SEGMENT_TRAIN_SEGMENTATION,
    queue_for,
)
from shared.reliable import WorkerEngine, long_job, reliable_task
from shared.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def app() -> Celery:
    return create_celery_app("routing", Settings(redis_url="redis://127.0.0.1:1/0"))


def test_trainings_and_activations_never_share_the_real_time_queue() -> None:
    assert queue_for(SEGMENT_TRAIN_SEGMENTATION) == "segment.runs"
    assert queue_for(SEGMENT_ACTIVATE_SEGMENTATION) == "segment.runs"
    assert queue_for(SEGMENT_REFRESH_CUSTOMERS) == "segment"
    assert queue_for(SEGMENT_SCHEDULE_RETRAINS) == "segment"
    assert all(queue_for(job).endswith(".runs") for job in LONG_JOBS)
    assert {queue_for(job) for job in LONG_JOBS} <= set(QUEUES)


def test_celery_routes_every_task_as_the_relay_does(app: Celery) -> None:
    for name in (*LONG_JOBS, SEGMENT_REFRESH_CUSTOMERS, "nlp.analyze_reviews"):
        routed = app.amqp.router.route({}, name)
        assert routed["queue"].name == queue_for(name), name
    assert {queue.name for queue in app.conf.task_queues} == set(QUEUES)


def test_an_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="no known service"):
        queue_for("billing.charge_card")


def test_a_long_job_must_be_declared_to_reach_its_queue(app: Celery) -> None:
    engine = WorkerEngine(lambda: pytest.fail("no database needed"))
    with pytest.raises(ValueError, match="real-time queue 'segment'"):
        long_job(app, SEGMENT_REFRESH_CUSTOMERS, engine=engine, max_attempts=3)
    with pytest.raises(ValueError, match="is a long job"):
        reliable_task(app, SEGMENT_TRAIN_SEGMENTATION, engine=engine, max_attempts=3)
