"""Finding relayed work whose message is gone, without waiting for a fixed timeout.

Postgres knows which outbox rows were published and not yet completed; Redis knows which
messages exist: waiting in a queue, or delivered to a worker and not yet acknowledged
(kombu's ``unacked`` hash). A published row that no message names any more was lost — with
a Redis restart that kept no data, or with a worker whose main process died holding it
(its delivery then sits in ``unacked`` until the visibility timeout, 15 minutes). The
watch compares the two and hands the lost rows back to the relay within seconds.

A delivery counts as held by a worker when a live worker reports its task as active or
reserved (Celery's remote control ``inspect``). Nothing is judged before ``grace_s``: a
row just published, or a message on its way from the queue to a worker, is not lost.
Misjudging costs at most one extra run of idempotent work; missing a loss costs nothing
but time, since the relay's stale re-drive remains the last resort.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from celery import Celery
from redis import Redis

from shared.contracts import QUEUES

log = logging.getLogger(__name__)

UNACKED = "unacked"  # kombu's Redis transport: delivery tag -> [payload, exchange, key]
UNACKED_INDEX = "unacked_index"  # delivery tag -> time of delivery
# kombu's separator between a queue and its priority lists: ``<queue>\x06\x16<priority>``.
# Named, not searched for (a SCAN walks every key of the database: seconds with a large
# cache), for the priorities kombu's default steps use.
_PRIORITY_LISTS = tuple(f"\x06\x16{step}" for step in (3, 6, 9))


@dataclass(frozen=True)
class BrokerView:
    """The outbox ids that some message in Redis still carries, and stray deliveries."""

    outbox_ids: frozenset[int]
    orphaned_tags: tuple[str, ...]


def _outbox_ids(payload: dict[str, Any]) -> list[int]:
    """The ``outbox_ids`` of one task message (Celery protocol 2, kombu's body encoding)."""
    body = payload.get("body", "")
    if payload.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    try:
        _args, kwargs, _embed = orjson.loads(body)
        return [int(i) for i in kwargs.get("outbox_ids", [])]
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        return []  # not one of ours: nothing to account for


def _task_id(payload: dict[str, Any]) -> str | None:
    task_id = payload.get("headers", {}).get("id")
    return str(task_id) if task_id else None


@dataclass
class BrokerWatch:
    redis: Redis
    celery_app: Celery
    grace_s: float = 10.0
    inspect_timeout_s: float = 1.0
    queues: Iterable[str] = field(default=QUEUES)

    def live_task_ids(self) -> set[str]:
        """Tasks that running workers hold (executing or prefetched)."""
        inspect = self.celery_app.control.inspect(timeout=self.inspect_timeout_s)
        held: set[str] = set()
        for replies in (inspect.active() or {}, inspect.reserved() or {}):
            for tasks in replies.values():
                held.update(str(task["id"]) for task in tasks if task.get("id"))
        return held

    def _queued_payloads(self) -> list[bytes]:
        names: list[str] = []
        for queue in self.queues:
            names += [queue, *(f"{queue}{suffix}" for suffix in _PRIORITY_LISTS)]
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.lrange(name, 0, -1)
        return [payload for found in pipe.execute() for payload in found]

    def view(self) -> BrokerView:
        # Queues first, deliveries second: a message moving from a queue to a worker
        # meanwhile is then seen in one of the two, never in neither.
        queued = self._queued_payloads()
        delivered = cast(dict[bytes, bytes], self.redis.hgetall(UNACKED))
        delivered_at = dict(
            cast(
                list[tuple[bytes, float]], self.redis.zrange(UNACKED_INDEX, 0, -1, withscores=True)
            )
        )
        ids: set[int] = set()
        for raw in queued:
            ids.update(_outbox_ids(orjson.loads(raw)))
        settled_before = time.time() - self.grace_s
        payloads = {tag: orjson.loads(raw)[0] for tag, raw in delivered.items()}
        old = {tag for tag in payloads if delivered_at.get(tag, time.time()) <= settled_before}
        # Asking the workers waits out the reply timeout: only for deliveries held long.
        live = self.live_task_ids() if old else set()
        orphaned: list[str] = []
        for tag, payload in payloads.items():
            if tag not in old or _task_id(payload) in live:
                ids.update(_outbox_ids(payload))
            else:
                orphaned.append(tag.decode())
        return BrokerView(frozenset(ids), tuple(orphaned))

    def forget(self, tags: Iterable[str]) -> None:
        """Drop deliveries nobody holds (their rows are re-driven instead): otherwise the
        transport would also restore them after the visibility timeout."""
        tags = list(tags)
        if tags:
            pipe = self.redis.pipeline()
            pipe.hdel(UNACKED, *tags)
            pipe.zrem(UNACKED_INDEX, *tags)
            pipe.execute()
