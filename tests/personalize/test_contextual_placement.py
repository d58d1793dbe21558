"""A placement switched to the contextual bandit (``linear_thompson``): the worker caches
each customer's numeric context, the hot path reads it and logs it with the propensities,
and the policy learns from the storefront's feedback which offer suits which context."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from redis import Redis
from sqlalchemy import Engine, Row, text
from sqlmodel import Session

from services.personalize.cache import customer_key, subject_hash
from services.personalize.context import CONTEXT_NAMES, parse_context
from services.personalize.tasks import refresh_customers
from shared.reliable import Subject
from shared.settings import Settings
from tests.personalize.conftest import Shop, wait
from tests.segment.test_features import AS_OF, DAY, create_customer, create_order, create_tenant
from tests.support.http import auth, tenant_of

pytestmark = [pytest.mark.e2e]

# Bargain hunters (all orders with a code) convert on the discount, recent regulars on
# the story; neither has a segment, so only the context tells them apart.
BARGAIN = "0,0,0,1"
REGULAR = "1,0,0,0"
TASTE = {(BARGAIN, "deal"), (REGULAR, "story")}


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def test_a_contextual_placement_is_chosen_logs_its_context_and_learns(
    shop: Shop, engine: Engine, redis: Redis, settings: Settings
) -> None:
    shop.create_offer("deal")
    shop.create_offer("story", kind="content")
    response = shop.client.put(
        "/v1/placements/home",
        json={"algorithm": "linear_thompson", "holdout_share": 0},
        headers=auth(shop.admin),
    )
    assert response.status_code == 200, response.text
    assert response.json()["algorithm"] == "linear_thompson"
    shop.serving({"deal", "story"})
    # The offers can reach the snapshot before the new algorithm does: wait for the latter.
    wait(lambda: _served_by(shop, engine) == "linear_thompson", 30, "the contextual policy")
    tenant = tenant_of(engine, shop.admin)
    secret = settings.secret_key.get_secret_value()
    visitors = {f"ctx-{i}": BARGAIN if i % 2 else REGULAR for i in range(20)}
    for visitor, context in visitors.items():  # as the worker's refresh writes them
        redis.hset(customer_key(tenant, subject_hash(secret, visitor)), "ctx", context)

    first = shop.offers("ctx-1").json()
    wait(lambda: _decision(engine, first["decision_id"]) is not None, 30, "the decision")
    assert _decision(engine, first["decision_id"]) == ("linear_thompson", [0, 0, 0, 1.0])
    assert 0 < first["offers"][0]["propensity"] <= 1

    for _ in range(8):  # rounds: visits and feedback, then a moment for the worker
        events = []
        for visitor, context in visitors.items():
            answer = shop.offers(visitor).json()
            offer = answer["offers"][0]["offer_id"]
            if (context, offer) in TASTE:
                events.append(
                    {"decision_id": answer["decision_id"], "offer_id": offer, "kind": "conversion"}
                )
        if events:
            assert shop.feedback(events).status_code == 200
        wait(lambda: _unapplied(engine, tenant) == 0, 30, "feedback learnt")

    shown: dict[str, Counter[str]] = {BARGAIN: Counter(), REGULAR: Counter()}
    for _ in range(3):
        for visitor, context in visitors.items():
            shown[context][shop.offers(visitor).json()["offers"][0]["offer_id"]] += 1
    assert shown[BARGAIN]["deal"] >= 24, shown  # of 30
    assert shown[REGULAR]["story"] >= 24, shown


def test_the_worker_caches_the_context_only_with_consent(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    secret = settings.secret_key.get_secret_value()
    with Session(engine) as session:
        tenant = create_tenant(session)
        keen = create_customer(session, tenant)
        quiet = create_customer(session, tenant)
        fresh = create_customer(session, tenant)
        for customer in (keen, quiet):
            create_order(session, tenant, customer, AS_OF - DAY, discount_code="SALE")
            create_order(session, tenant, customer, AS_OF - 2 * DAY, discount_code=None)
        session.execute(
            text("UPDATE customer SET consent = '{\"marketing\": false}' WHERE id = :c"),
            {"c": quiet},
        )
        session.commit()
        ids: dict[int, str] = {
            int(pk): str(cid)
            for pk, cid in session.execute(
                text("SELECT id, customer_id FROM customer WHERE tenant_id = :t"), {"t": tenant}
            )
        }
        subjects = [Subject(0, tenant, pk, pk, 0) for pk in (keen, quiet, fresh)]
        refresh_customers(session, redis, secret, subjects)

    def cached(pk: int) -> dict[bytes, bytes]:
        return redis.hgetall(customer_key(tenant, subject_hash(secret, ids[pk])))  # type: ignore[return-value]

    context = dict(zip(CONTEXT_NAMES, parse_context(cached(keen).get(b"ctx")), strict=True))
    assert context["discount_share"] == 0.5
    assert 0 < context["frequency"] < 1
    assert 0 < context["order_value"] < 1
    assert b"ctx" not in cached(quiet)  # no marketing consent: not profiled
    assert parse_context(cached(fresh)[b"ctx"]) == (0.0, 0.0, 0.0, 0.0)  # no orders yet


def _decision(engine: Engine, decision_id: str) -> tuple[str, list[float]] | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT algorithm, context FROM decision WHERE decision_id = :d"),
            {"d": decision_id},
        ).first()
    return (row.algorithm, list(row.context)) if row else None


def _served_by(shop: Shop, engine: Engine) -> str:
    """The algorithm that answered a fresh probe, once its decision is logged."""
    decision_id = shop.offers(f"probe-{uuid.uuid4().hex[:6]}").json()["decision_id"]

    def logged() -> Row[tuple[str | None]] | None:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT algorithm FROM decision WHERE decision_id = :d"), {"d": decision_id}
            ).first()

    wait(lambda: logged() is not None, 30, "the probe's decision")
    row = logged()
    return (row and row.algorithm) or ""  # a holdout answer has no algorithm


def _unapplied(engine: Engine, tenant: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM feedback WHERE tenant_id = :t AND applied_at IS NULL"),
                {"t": tenant},
            ).scalar_one()
        )
