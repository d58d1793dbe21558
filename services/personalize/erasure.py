"""What personalize erases of a customer: their keys in the Redis cache.

Imported by the personalize worker, which registers ``personalize.erase_customer``.
"""

from __future__ import annotations

from redis import Redis
from sqlmodel import Session

from services.personalize.cache_keys import customer_key, customer_keys_pattern
from shared.db import create_db_engine
from shared.erasure import ErasureStore, ErasureSubject, erasure_worker
from shared.reliable import WorkerEngine
from shared.settings import get_settings

CACHE_STORE = "personalize-cache"
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
    client = redis.get()
    pattern = customer_keys_pattern(subject.tenant_id, subject.customer_pk)
    keys = [customer_key(subject.tenant_id, subject.customer_pk)]
    keys += [key.decode() for key in client.scan_iter(match=pattern, count=1_000)]
    deleted: int = client.delete(*keys)  # type: ignore[assignment]  # a sync client
    return {"redis_keys": deleted}


STORES = (ErasureStore(CACHE_STORE, erase_cache),)

erasure_worker(
    "personalize",
    STORES,
    engine=WorkerEngine(lambda: create_db_engine(_settings, pool_size=1)),
    max_attempts=_settings.max_task_attempts,
)
