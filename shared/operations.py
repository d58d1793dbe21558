"""What an operator asks of a running platform, read from where the platform keeps it.

Postgres holds the work owed (the outbox, dead letters, pending erasures) and the model
runs; Redis holds the queues (the same lists `shared.broker_watch` reads) and the
deliveries workers hold. ``segmenta status`` prints this, and every API's ``/metrics``
exports it (`shared.web.operations_metrics`), so the alert rules in ``deploy/`` and the
person at the terminal see the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from shared.broker_watch import _PRIORITY_LISTS, UNACKED
from shared.contracts import QUEUES
from shared.runs import RunStatus
from shared.web.backlog import Backlog, read_backlog


def queue_lists(queue: str) -> list[str]:
    """The Redis lists that hold ``queue``'s waiting messages (kombu's priority lists)."""
    return [queue, *(f"{queue}{suffix}" for suffix in _PRIORITY_LISTS)]


# The reason's kind: the error's class after "last error: ", else the reason's opening
# words (a long job's "its worker died N times"). Bounded, so usable as a metric label.
_DEAD_BY_REASON = text(
    """
    SELECT task_name, left(coalesce(nullif(
               split_part(split_part(reason, 'last error: ', 2), ':', 1), ''),
               regexp_replace(reason, '[0-9]+', 'N', 'g')), 64) AS kind,
           count(*), coalesce(extract(epoch FROM now() - max(created_at)), 0)
    FROM dead_letter GROUP BY 1, 2 ORDER BY 1, 2
    """
)
# Every run table, with the name the status and the metrics give its model.
RUN_TABLES = {"segmentation": "segmentation_run", "policy": "policy_run"}
_LAST_RUN = """
    SELECT max(finished_at), extract(epoch FROM now() - max(finished_at)),
           count(*) FILTER (WHERE status = ANY(:working))
    FROM {table} WHERE status = ANY(:working) OR status = :succeeded
"""
_ERASURES = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(requested_at)), 0) "
    "FROM erasure_request WHERE status = 'pending'"
)


@dataclass(frozen=True)
class DeadLetterGroup:
    task_name: str
    reason: str
    count: int
    newest_age_s: float


@dataclass(frozen=True)
class ModelRuns:
    model: str
    last_success_at: datetime | None
    last_success_age_s: float | None
    in_flight: int


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    waiting: int


@dataclass
class PlatformStatus:
    """None where the source did not answer (Postgres or Redis down)."""

    backlog: Backlog | None = None
    dead_letters: list[DeadLetterGroup] | None = None
    runs: list[ModelRuns] | None = None
    erasures_pending: int | None = None
    oldest_erasure_age_s: float | None = None
    queues: list[QueueDepth] | None = None
    deliveries_unacked: int | None = None
    processes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["backlog"] = self.backlog.as_dict() if self.backlog else None
        for run in found["runs"] or []:
            at = run["last_success_at"]
            run["last_success_at"] = at.isoformat() if at else None
        return found


def read_database_status(engine: Engine, status: PlatformStatus) -> None:
    """Fill the Postgres half of ``status``; leave it None when Postgres does not answer."""
    status.backlog = read_backlog(engine)
    if status.backlog is None:
        return
    try:
        with engine.connect() as connection:
            status.dead_letters = [
                DeadLetterGroup(str(t), str(r), int(n), round(float(age), 1))
                for t, r, n, age in connection.execute(_DEAD_BY_REASON)
            ]
            status.runs = []
            working = [RunStatus.PENDING, RunStatus.RUNNING, RunStatus.CANCELLING]
            for model, table in RUN_TABLES.items():
                at, age, in_flight = connection.execute(
                    text(_LAST_RUN.format(table=table)),
                    {"working": [str(s) for s in working], "succeeded": RunStatus.SUCCEEDED},
                ).one()
                age_s = round(float(age), 1) if age is not None else None
                status.runs.append(ModelRuns(model, at, age_s, int(in_flight)))
            pending, oldest = connection.execute(_ERASURES).one()
            status.erasures_pending = int(pending)
            status.oldest_erasure_age_s = round(float(oldest), 1)
    except SQLAlchemyError:
        return


def redis_lists() -> list[str]:
    """Every list whose length the status reads, in `apply_lengths`'s order."""
    return [name for queue in QUEUES for name in queue_lists(queue)]


def apply_lengths(status: PlatformStatus, lengths: list[int], unacked: int) -> None:
    per_queue = len(_PRIORITY_LISTS) + 1
    status.queues = [
        QueueDepth(queue, sum(lengths[i * per_queue : (i + 1) * per_queue]))
        for i, queue in enumerate(QUEUES)
    ]
    status.deliveries_unacked = unacked


def read_redis_status(redis: Redis, status: PlatformStatus) -> None:
    """Fill the Redis half: waiting messages per queue, deliveries held by workers."""
    try:
        pipe = redis.pipeline(transaction=False)
        for name in redis_lists():
            pipe.llen(name)
        pipe.hlen(UNACKED)
        *lengths, unacked = [int(n) for n in pipe.execute()]
    except (RedisError, OSError):
        return
    apply_lengths(status, lengths, unacked)


def read_status(engine: Engine, redis: Redis) -> PlatformStatus:
    status = PlatformStatus()
    read_database_status(engine, status)
    read_redis_status(redis, status)
    return status
