"""Concurrent senders retrying each other's batches: every record is stored exactly once."""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDS = 10_000
CLIENTS = 16


def orders(start: int, stop: int) -> list[dict[str, object]]:
    return [
        {
            "order_id": f"o-{n}",
            "customer_id": f"c-{n % 1_000}",
            "placed_at": "2026-10-30T18:02:11Z",
            "currency": "EUR",
            "total": 20.0,
            "lines": [{"product_id": f"p-{n % 37}", "quantity": 2, "unit_price": 10.0}],
        }
        for n in range(start, stop)
    ]


def test_10k_records_sent_twice_by_16_concurrent_clients_are_stored_once(
    api: str, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    # Batches of varied sizes, each sent twice, in shuffled order, by 16 senders at once.
    bounds = [0]
    rng = random.Random(7)
    while bounds[-1] < RECORDS:
        bounds.append(min(RECORDS, bounds[-1] + rng.choice([1, 50, 333, 1_000])))
    batches = [orders(a, b) for a, b in itertools.pairwise(bounds)] * 2
    rng.shuffle(batches)

    def send(batch: list[dict[str, object]]) -> dict[str, int]:
        with httpx.Client(base_url=api, timeout=120) as client:
            response = client.post("/v1/orders", json=batch, headers=auth(key))
            response.raise_for_status()
            body: dict[str, int] = response.json()
            return body

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(send, batches))

    tenant = tenant_of(engine, key)
    assert sum(r["accepted"] for r in results) == RECORDS
    assert sum(r["duplicates"] for r in results) == RECORDS
    assert count(engine, "orders", tenant) == RECORDS
    assert count(engine, "order_line", tenant) == RECORDS
    assert count(engine, "customer", tenant) == 1_000
    # Activity of a customer coalesces into at most one pending refresh.
    assert count(engine, "outbox", tenant, "published_at IS NULL") == 1_000
