"""A test-only worker erasing the fake store: ``celery -A tests.support.fake_store_worker``.

Its Redis keys are the fake store's contents; it reports how many it deleted.
"""

from __future__ import annotations

from redis import Redis
from sqlmodel import Session

from shared.celery_app import create_celery_app
from shared.db import create_db_engine
from shared.erasure import ErasureStore, ErasureSubject, erasure_worker
from shared.reliable import WorkerEngine
from shared.settings import get_settings
from tests.support.fake_store import FAKE_SERVICE, FAKE_STORE, declare, fake_key

settings = get_settings()
app = create_celery_app("segmenta-fake-store", settings)


def erase_fake(session: Session, subject: ErasureSubject) -> dict[str, int]:
    with Redis.from_url(settings.require_redis_url()) as client:
        deleted = int(client.delete(fake_key(subject.tenant_id, subject.customer_pk)))
    return {"fake_keys": deleted}


declare()
erasure_worker(
    FAKE_SERVICE,
    [ErasureStore(FAKE_STORE, erase_fake)],
    engine=WorkerEngine(lambda: create_db_engine(settings, pool_size=1)),
    max_attempts=settings.max_task_attempts,
)
