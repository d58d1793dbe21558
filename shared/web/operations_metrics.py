"""The operator's status (`shared.operations`) as Prometheus gauges, set at each scrape.

The alert rules in ``deploy/prometheus/alerts.yml`` read these, next to the outbox gauges
of `shared.web.backlog`.
"""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool
from prometheus_client import Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine

from shared.broker_watch import UNACKED
from shared.operations import (
    PlatformStatus,
    apply_lengths,
    read_database_status,
    redis_lists,
)

QUEUE_DEPTH = Gauge("segmenta_queue_depth", "Messages waiting in a Celery queue", ["queue"])
UNACKED_DELIVERIES = Gauge(
    "segmenta_queue_unacked", "Messages delivered to a worker and not yet acknowledged"
)
DEAD_BY_REASON = Gauge(
    "segmenta_dead_letters_by_reason", "Dead letters by task and reason", ["task", "reason"]
)
RUN_AGE = Gauge(
    "segmenta_last_successful_run_age_seconds",
    "Time since a model's last successful run (-1: none yet)",
    ["model"],
)
RUNS_IN_FLIGHT = Gauge("segmenta_runs_in_flight", "Runs pending or running", ["model"])
ERASURES_PENDING = Gauge("segmenta_erasures_pending", "Erasure requests not yet completed")
ERASURE_AGE = Gauge(
    "segmenta_erasure_oldest_age_seconds", "Age of the oldest erasure request not completed"
)
REDIS_UP = Gauge("segmenta_redis_up", "1 when the API reached Redis at this scrape")


def _set(status: PlatformStatus) -> None:
    if status.dead_letters is not None:
        DEAD_BY_REASON.clear()
        for group in status.dead_letters:
            DEAD_BY_REASON.labels(group.task_name, group.reason).set(group.count)
    for run in status.runs or []:
        age = run.last_success_age_s
        RUN_AGE.labels(run.model).set(-1 if age is None else age)
        RUNS_IN_FLIGHT.labels(run.model).set(run.in_flight)
    if status.erasures_pending is not None:
        ERASURES_PENDING.set(status.erasures_pending)
        ERASURE_AGE.set(status.oldest_erasure_age_s or 0)
    for queue in status.queues or []:
        QUEUE_DEPTH.labels(queue.queue).set(queue.waiting)
    if status.deliveries_unacked is not None:
        UNACKED_DELIVERIES.set(status.deliveries_unacked)


async def refresh_operations_gauges(engine: Engine, redis: Redis) -> None:
    """Read the status (Postgres in a thread, Redis on the loop) and set the gauges."""
    status = PlatformStatus()
    await run_in_threadpool(read_database_status, engine, status)  # sets the backlog too
    try:
        pipe = redis.pipeline(transaction=False)
        for name in redis_lists():
            pipe.llen(name)
        pipe.hlen(UNACKED)
        *lengths, unacked = [int(n) for n in await pipe.execute()]
        apply_lengths(status, lengths, unacked)
        REDIS_UP.set(1)
    except (RedisError, OSError):
        REDIS_UP.set(0)
    _set(status)
