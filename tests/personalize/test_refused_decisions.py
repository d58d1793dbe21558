"""A decision record Postgres refuses is set aside, and the log behind it keeps flowing.

The API never writes such a record, but a writer of another version or a hand-made entry
could; before, the drain failed on its batch at every tick, and no decision after it was
stored or learnt from again.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from redis import Redis
from sqlalchemy import Engine, text

from services.personalize.cache import DECISION_STREAM, REJECTED_DECISIONS
from tests.conftest import MakeKey
from tests.personalize.conftest import Shop, logged_decision, wait
from tests.support.http import tenant_of

pytestmark = pytest.mark.e2e


def _stored(engine: Engine, ids: list[str]) -> set[str]:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT decision_id FROM decision WHERE decision_id = ANY(:ids)"), {"ids": ids}
        )
        return set(found.scalars())


def test_a_refused_record_is_set_aside_and_the_decisions_around_it_are_stored(
    make_key: MakeKey, pclient: httpx.Client, engine: Engine, env: dict[str, str]
) -> None:
    tenant = f"shop-{uuid.uuid4().hex[:12]}"
    admin = make_key("admin", tenant=tenant)
    shop = Shop(admin, make_key("offers:read", tenant=tenant), pclient)
    shop.configure(holdout_share=0)
    shop.create_offer("spring-10")
    tenant_id = tenant_of(engine, admin)
    good = [uuid.uuid4().hex for _ in range(4)]
    refused = "x" * 40  # longer than any decision id: Postgres refuses the row
    with Redis.from_url(env["SEGMENTA_REDIS_URL"]) as redis:
        before = redis.xlen(REJECTED_DECISIONS)
        # One transaction: the drain sees all five entries in one batch.
        pipe = redis.pipeline(transaction=True)
        for decision_id in (good[0], good[1], refused, good[2], good[3]):
            record = logged_decision(tenant_id, "spring-10", decision_id=decision_id)
            pipe.xadd(DECISION_STREAM, {"d": record})
        pipe.execute()
        wait(lambda: _stored(engine, good) == set(good), 30, "the good decisions stored")
        wait(lambda: redis.xlen(REJECTED_DECISIONS) > before, 10, "the refused one set aside")
        rejected = [
            fields
            for _, fields in redis.xrange(REJECTED_DECISIONS, "-", "+")
            if refused.encode() in fields[b"d"]
        ]
        assert len(rejected) == 1
        assert rejected[0][b"error"] == b"StringDataRightTruncation"
        assert rejected[0][b"sqlstate"] == b"22001"
    assert _stored(engine, [refused]) == set()
    # Later decisions are stored and learnt as before.
    shop.serving({"spring-10"})
    answer = shop.offers("visitor-after", placement="home").json()
    wait(lambda: bool(_stored(engine, [answer["decision_id"]])), 30, "a later answer stored")
