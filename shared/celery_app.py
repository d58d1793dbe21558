"""The Celery app factory, with queue routing and the reliability settings of RELIABILITY.md."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

from shared.contracts import QUEUES, queue_for
from shared.settings import Settings


def route(name: str, *_: Any, **__: Any) -> dict[str, str] | None:
    """Celery's router: our tasks go where `queue_for` says (long jobs to their service's
    runs queue); Celery's own (``celery.*``) to the default queue."""
    try:
        return {"queue": queue_for(name)}
    except ValueError:
        return None


def create_celery_app(name: str, settings: Settings) -> Celery:
    app = Celery(name, broker=settings.require_redis_url())
    transport_options = {
        # Redis re-delivers an unacknowledged task after this long; it must exceed the
        # longest task (checked in Settings) and be the same wherever it is read.
        "visibility_timeout": settings.visibility_timeout_s,
    }
    app.conf.update(
        task_queues=[Queue(queue) for queue in QUEUES],
        task_default_queue="ingest",
        task_routes=(route,),
        task_serializer="json",
        accept_content=["json"],
        # Ack after the task body ran; re-queue when the worker process dies mid-task.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=max(1, settings.task_time_limit_s - 10),
        broker_transport_options=transport_options,
        result_backend_transport_options=transport_options,
        visibility_timeout=settings.visibility_timeout_s,
        # Nobody waits on results: Postgres holds every outcome.
        task_ignore_result=True,
        result_backend=None,
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        enable_utc=True,
    )
    return app
