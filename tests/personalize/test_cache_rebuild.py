"""Redis lost its data (a restart without persistence): personalize's cache comes back.

Customers' segments and placements' snapshots are written to Redis when they change; the
worker's once-a-second timer notices the lost cache by its missing marker and rebuilds it
from Postgres, so the storefront gets its offers again within seconds, not 404s until the
next change.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from redis import Redis
from sqlalchemy import Engine, text

from services.personalize.cache import customer_key, placement_key, subject_hash
from services.personalize.cache_guard import MARKER
from shared.db import session_scope
from tests.conftest import MakeKey
from tests.personalize.conftest import Shop, wait

pytestmark = pytest.mark.e2e


def test_a_lost_cache_is_rebuilt_and_offers_are_answered_again(
    make_key: MakeKey, pclient: httpx.Client, engine: Engine, env: dict[str, str]
) -> None:
    tenant = f"shop-{uuid.uuid4().hex[:12]}"
    shop = Shop(make_key("admin", tenant=tenant), make_key("offers:read", tenant=tenant), pclient)
    # No holdout: "c-lost" must be shown the offer whatever its hash under this tenant.
    shop.configure(holdout_share=0)
    shop.create_offer("spring-10")
    shop.serving({"spring-10"})
    with session_scope(engine) as session:
        tenant_id = session.execute(
            text("SELECT id FROM tenant WHERE name = :n"), {"n": tenant}
        ).scalar_one()
        session.execute(
            text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, 'c-lost')"),
            {"t": tenant_id},
        )
    secret = env["SEGMENTA_SECRET_KEY"]
    entry = customer_key(tenant_id, subject_hash(secret, "c-lost"))
    with Redis.from_url(env["SEGMENTA_REDIS_URL"]) as redis:
        wait(lambda: bool(redis.exists(MARKER)), 30, "the first build's marker")
        # What a restart without persistence does to this tenant's part of the cache:
        redis.delete(MARKER, placement_key(tenant_id, "home"), entry)
        wait(lambda: bool(redis.exists(MARKER)), 30, "the rebuild")
        assert redis.hget(entry, "consent") == b"1"
        assert redis.exists(placement_key(tenant_id, "home"))
    answer = shop.offers("c-lost", placement="home")
    assert answer.status_code == 200, answer.text
    assert [o["offer_id"] for o in answer.json()["offers"]] == ["spring-10"]
