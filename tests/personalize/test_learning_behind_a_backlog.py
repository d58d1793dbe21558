"""A backlog in the decision log does not hold up learning.

The worker drains the decision stream and learns conversions one task at a time. When
the storefront logs decisions faster than one drain stores them (traffic from many API
processes, or a slow disk under Postgres), a drain that ran until the stream was empty
kept the learning queued behind it waiting for the whole backlog, and the storefront was
served stale posteriors for as long. A drain now takes a slice of the backlog at a time.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from redis import Redis
from sqlalchemy import Engine, text

from bench.personalize_load import learnt_conversions
from services.personalize.cache import DECISION_STREAM
from tests.conftest import MakeKey
from tests.personalize.conftest import Shop, logged_decision, wait
from tests.support.http import tenant_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BACKLOG = 100_000  # several seconds of draining (about 16,000 a second here)


def _stored(engine: Engine, tenant_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM decision WHERE tenant_id = :t"), {"t": tenant_id}
            ).scalar_one()
        )


def test_a_conversion_is_learnt_while_a_backlog_of_decisions_is_still_draining(
    make_key: MakeKey, pclient: httpx.Client, engine: Engine, env: dict[str, str]
) -> None:
    tenant = f"shop-{uuid.uuid4().hex[:12]}"
    admin = make_key("admin", tenant=tenant)
    shop = Shop(admin, make_key("offers:read", "feedback:write", tenant=tenant), pclient)
    shop.configure(holdout_share=0)
    shop.create_offer("spring-10")
    shop.serving({"spring-10"})
    tenant_id = tenant_of(engine, admin)
    answer = shop.offers("visitor-1", placement="home").json()
    # (the probes that waited for the offer to be served are decisions too)
    wait(lambda: _stored(engine, tenant_id) >= 2, 30, "the answers' decisions stored")
    before = _stored(engine, tenant_id)

    with Redis.from_url(env["SEGMENTA_REDIS_URL"]) as redis:
        # At once (MULTI): a drain running meanwhile sees the whole backlog or none of it.
        pipe = redis.pipeline(transaction=True)
        for _ in range(BACKLOG):
            pipe.xadd(DECISION_STREAM, {"d": logged_decision(tenant_id, "spring-10")})
        pipe.execute()
        # The conversion arrives once the worker is busy with the backlog.
        wait(lambda: _stored(engine, tenant_id) > before, 30, "the backlog's drain started")
        accepted = shop.feedback(
            {"decision_id": answer["decision_id"], "offer_id": "spring-10", "kind": "conversion"}
        )
        assert accepted.json()["accepted"] == 1, accepted.text
        wait(lambda: learnt_conversions(redis, tenant_id, "home") >= 1, 60, "the conversion learnt")
        # Learnt while the drain was still storing the backlog, not after it.
        behind = before + BACKLOG - _stored(engine, tenant_id)
        assert behind > 0, "learnt only once the whole backlog was stored"
    # And the backlog is stored, every decision once.
    wait(lambda: _stored(engine, tenant_id) >= before + BACKLOG, 120, "the backlog stored")
    assert _stored(engine, tenant_id) == before + BACKLOG
