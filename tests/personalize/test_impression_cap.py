"""An offer's ``max_impressions_per_customer_per_day``, enforced on the hot path from a
Redis counter per (customer, day): past the cap the offer is not shown to that customer
until the next UTC day; other customers and uncapped offers are unaffected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from sqlalchemy import Engine, text

from services.personalize.cache import SHOWN_TTL_S, shown_key, subject_hash
from shared.erasure import ErasureSubject
from shared.settings import Settings
from tests.personalize.conftest import Shop, wait
from tests.support.http import auth, tenant_of

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def capped_shop(shop: Shop) -> Shop:
    """``capped`` (twice a day per customer) and ``free`` (no cap) at home, no holdout."""
    shop.configure(holdout_share=0)
    shop.create_offer("capped", max_impressions_per_customer_per_day=2)
    shop.create_offer("free")
    shop.serving({"capped", "free"})
    return shop


def shown(shop: Shop, customer: str) -> list[str]:
    answer = shop.offers(customer, n=2)
    assert answer.status_code == 200, answer.text
    return sorted(o["offer_id"] for o in answer.json()["offers"])


def test_a_capped_offer_stops_after_its_daily_impressions(
    capped_shop: Shop, engine: Engine, redis: Redis, settings: Settings
) -> None:
    shop = capped_shop

    answers = [shop.offers("cap-1", n=2).json() for _ in range(5)]

    offers = [sorted(o["offer_id"] for o in a["offers"]) for a in answers]
    assert offers == [["capped", "free"]] * 2 + [["free"]] * 3
    # What the policy chose among is logged without the capped offer, shown with certainty.
    assert answers[-1]["offers"][0]["propensity"] == 1.0
    wait(lambda: _eligible(engine, answers[-1]["decision_id"]) is not None, 30, "decision")
    assert _eligible(engine, answers[-1]["decision_id"]) == ["free"]
    assert _eligible(engine, answers[0]["decision_id"]) == ["capped", "free"]
    # Other customers still get it; the counter is the customer's, per day, and expires.
    assert shown(shop, "cap-2") == ["capped", "free"]
    tenant = tenant_of(engine, shop.admin)
    subject = subject_hash(settings.secret_key.get_secret_value(), "cap-1")
    key = shown_key(tenant, subject, datetime.now(UTC).date())
    assert redis.hgetall(key) == {b"capped": b"2"}
    assert 0 < int(redis.ttl(key)) <= SHOWN_TTL_S  # type: ignore[arg-type]


def test_the_cap_counts_today_only_and_reads_redis(
    capped_shop: Shop, engine: Engine, redis: Redis, settings: Settings
) -> None:
    shop = capped_shop
    tenant = tenant_of(engine, shop.admin)
    secret = settings.secret_key.get_secret_value()
    today = datetime.now(UTC).date()
    # Yesterday's showings do not count today ...
    redis.hset(
        shown_key(tenant, subject_hash(secret, "cap-3"), today - timedelta(days=1)), "capped", "9"
    )
    assert shown(shop, "cap-3") == ["capped", "free"]
    # ... and a customer already at the cap today (shown on another API process) is capped.
    redis.hset(shown_key(tenant, subject_hash(secret, "cap-4"), today), "capped", "2")
    assert shown(shop, "cap-4") == ["free"]


def test_raising_the_cap_serves_the_offer_again(capped_shop: Shop) -> None:
    shop = capped_shop
    for _ in range(2):
        shown(shop, "cap-5")
    assert shown(shop, "cap-5") == ["free"]

    update = {"name": "Offer capped", "kind": "discount", "placements": ["home"]}
    response = shop.client.put(
        "/v1/offers/capped",
        json={**update, "max_impressions_per_customer_per_day": 3},
        headers=auth(shop.admin),
    )
    assert response.status_code == 200, response.text

    wait(lambda: "capped" in shown(shop, "cap-5"), 30, "the raised cap")
    assert shown(shop, "cap-5") == ["free"]  # the third was the last one today


def _eligible(engine: Engine, decision_id: str) -> list[str] | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT eligible FROM decision WHERE decision_id = :d"), {"d": decision_id}
        ).first()
    return sorted(row.eligible) if row else None


def test_erasure_deletes_the_customers_counters(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.personalize import erasure

    monkeypatch.setattr(erasure.redis, "_client", redis)
    today = datetime.now(UTC).date()
    subject = ErasureSubject(erasure_id=1, tenant_id=999_001, customer_pk=1, subject_hash="h-x")
    kept = shown_key(999_001, "h-y", today)
    for day in (today - timedelta(days=1), today):
        redis.hset(shown_key(999_001, "h-x", day), "capped", "1")
    redis.hset(kept, "capped", "1")

    assert erasure.erase_cache(None, subject) == {"redis_keys": 2}  # type: ignore[arg-type]

    assert redis.keys("personalize:999001:shown:h-x:*") == []
    assert redis.exists(kept) == 1
