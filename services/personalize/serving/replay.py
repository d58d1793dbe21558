"""Decisions this API process acknowledged lately, written again when Redis lost its data.

An answered decision lives only in Redis's stream until the worker drains it into
Postgres about a second later; a Redis that restarts without its data (no persistence,
or a failover to an empty or lagging replica) would take the not-yet-drained ones with
it, and a SIGKILLed Redis with AOF ``everysec`` those of its last second or two. So each
process keeps what it logged in the last few seconds (a deque append on the hot path, no
extra round trip), and once a second asks Redis, in one round trip, for an epoch key
(set to a random value by the first process to look) and its server's run id (new at
every start). When the key is missing or not the value this process knows (the data is
gone), or the run id changed (a restart or failover: the data may have lost its last
writes), every record kept goes into the stream again under the same decision id: the
drain stores a decision once and counts its shows only when newly stored, so writing
again one that survived or was already drained changes nothing. The epoch is then set
again where missing: the first process to notice sets it, the others adopt it.

What is still lost: records older than the window (a drain stalled longer than it), and
those a process held when it died together with Redis's data.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.personalize.cache import DECISION_STREAM, decision_key

log = logging.getLogger(__name__)
EPOCH_KEY = "personalize:log-epoch"


@dataclass(slots=True)
class Kept:
    at: float
    tenant_id: int
    decision_id: str
    record: bytes | None  # None once dropped: its answer was not acknowledged from Redis


class DecisionReplay:
    def __init__(self, *, window_s: float, max_records: int, ttl_s: int) -> None:
        self.window_s = window_s
        self.ttl_s = ttl_s
        self._kept: deque[Kept] = deque(maxlen=max_records)
        self._epoch: bytes | None = None
        self._run_id: str | None = None

    def keep(self, *, tenant_id: int, decision_id: str, record: bytes) -> Kept:
        """Kept before it is logged, so no loss between Redis's reply and this process
        resuming goes unnoticed; ``drop`` it when the logging failed."""
        kept = Kept(time.monotonic(), tenant_id, decision_id, record)
        self._kept.append(kept)
        return kept

    @staticmethod
    def drop(kept: Kept) -> None:
        kept.record = None

    def __len__(self) -> int:
        return len(self._kept)

    def _prune(self) -> None:
        horizon = time.monotonic() - self.window_s
        while self._kept and self._kept[0].at < horizon:
            self._kept.popleft()

    async def check(self, redis: Redis) -> int:
        """Replay the kept records when Redis lost its data; how many were written."""
        self._prune()
        looked = redis.pipeline(transaction=False)
        looked.get(EPOCH_KEY)
        looked.info("server")
        seen, server = await looked.execute(raise_on_error=False)
        if isinstance(seen, Exception):
            raise seen
        # A Redis that refuses INFO (some managed ones rename it): the epoch key alone.
        run_id = None if isinstance(server, Exception) else str(server.get("run_id"))
        if seen is not None and seen == self._epoch and run_id == self._run_id:
            return 0
        kept = [(k, record) for k in self._kept if (record := k.record) is not None]
        pipe = redis.pipeline(transaction=False)
        for k, record in kept:
            pipe.xadd(DECISION_STREAM, {"d": record})
            pipe.set(decision_key(k.tenant_id, k.decision_id), record, ex=self.ttl_s)
        pipe.set(EPOCH_KEY, secrets.token_hex(16), nx=True)
        pipe.get(EPOCH_KEY)
        replies = await pipe.execute()
        first_look = self._epoch is None
        self._epoch, self._run_id = replies[-1], run_id
        if kept and not first_look:
            log.warning(
                "Redis restarted or lost its data: %d recent decisions logged again", len(kept)
            )
        return len(kept)

    async def run(self, redis: Redis, every_s: float = 1.0) -> None:
        """The check, once every ``every_s`` until cancelled; Redis unreachable is retried."""
        while True:
            try:
                await self.check(redis)
            except RedisError as exc:
                log.info("decision replay check skipped: %s", type(exc).__name__)
            except Exception:  # never the end of the checks: the next second tries again
                log.exception("decision replay check failed")
            await asyncio.sleep(every_s)
