"""What personalize erases of a customer: their Redis cache entry and recommendations, and
the decisions and feedback logged under their id's hash (also those of visits before they
were a customer, which the customer row's cascade does not reach).

Imported by the personalize worker, which registers ``personalize.erase_customer``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis import Redis
from sqlalchemy import delete
from sqlmodel import Session

from services.personalize.cache import customer_key, recs_key, shown_key
from shared.db import create_db_engine
from shared.erasure import ErasureStore, ErasureSubject, erasure_worker
from shared.models.personalize import Decision, Feedback
from shared.reliable import WorkerEngine
from shared.settings import get_settings

CACHE_STORE = "personalize-cache"
LOG_STORE = "personalize-log"
_settings = get_settings()


class _RedisHolder:
    """One client per worker process, made after the prefork fork."""

    def __init__(self) -> None:
        self._client: Redis | None = None

    def get(self) -> Redis:
        if self._client is None:
            self._client = Redis.from_url(_settings.require_redis_url())
        return self._client


redis = _RedisHolder()


def erase_cache(session: Session, subject: ErasureSubject) -> dict[str, int]:
    today = datetime.now(UTC).date()
    keys = [
        customer_key(subject.tenant_id, subject.subject_hash),
        recs_key(subject.tenant_id, subject.subject_hash),
    ]
    # Daily counters live two days: today's, yesterday's and (clocks differ) tomorrow's.
    keys += [
        shown_key(subject.tenant_id, subject.subject_hash, today + timedelta(days=d))
        for d in (-2, -1, 0, 1)
    ]
    deleted: int = redis.get().delete(*keys)  # type: ignore[assignment]  # a sync client
    return {"redis_keys": deleted}


def erase_log(session: Session, subject: ErasureSubject) -> dict[str, int]:
    counts = {}
    for table in (Feedback, Decision):
        deleted = session.execute(
            delete(table).where(
                table.tenant_id == subject.tenant_id,  # type: ignore[arg-type]
                table.subject_hash == subject.subject_hash,  # type: ignore[arg-type]
            )
        )
        counts[table.__tablename__] = int(deleted.rowcount)  # type: ignore[attr-defined]
    return counts


STORES = (ErasureStore(CACHE_STORE, erase_cache), ErasureStore(LOG_STORE, erase_log))

erasure_worker(
    "personalize",
    STORES,
    engine=WorkerEngine(lambda: create_db_engine(_settings, pool_size=1)),
    max_attempts=_settings.max_task_attempts,
)
