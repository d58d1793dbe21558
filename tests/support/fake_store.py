"""A store that only tests have, erased by a worker that only tests start.

It belongs to no real service's worker, so it shows that a request waits for a store
registered in another process. It belongs to the ``ingest`` queue (the only queue no real
worker consumes); `declare` makes the process that calls it expect the store.
"""

from __future__ import annotations

from shared.erasure import declare_worker_stores

FAKE_SERVICE = "ingest"
FAKE_STORE = "test-fake-cache"


def fake_key(tenant_id: int, customer_pk: int) -> str:
    return f"{FAKE_STORE}:{tenant_id}:customer:{customer_pk}"


def declare() -> None:
    declare_worker_stores(FAKE_SERVICE, (FAKE_STORE,))
