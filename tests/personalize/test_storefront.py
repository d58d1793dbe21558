"""The storefront's door, end to end: offers configured, answered from Redis, decisions
logged to Postgres by the worker, feedback stored once and learnt from."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, text

from services.personalize.serving.schemas import OfferAnswer
from tests.personalize.conftest import Shop, wait
from tests.support.http import auth, tenant_of

pytestmark = [pytest.mark.e2e]


def logged(engine: Engine, decision_id: str) -> dict[str, object] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT strategy, offers, segment_key, personalised FROM decision "
                    "WHERE decision_id = :d"
                ),
                {"d": decision_id},
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def test_an_unknown_visitor_gets_a_logged_cold_start_answer(shop: Shop, engine: Engine) -> None:
    shop.create_offer("a", discount_code="TENOFF")
    shop.create_offer("b")
    shop.serving({"a", "b"})
    answers = [shop.offers(f"visitor-{i}", placement="home") for i in range(40)]
    assert {a.status_code for a in answers} == {200}
    bodies = [a.json() for a in answers]
    served = [b for b in bodies if b["strategy"] == "bandit"]
    assert len(served) >= 30  # a 5% holdout takes a few
    first = served[0]
    OfferAnswer.model_validate(first)  # the documented answer, whatever serialises it
    assert first["segment"] is None
    assert len(first["offers"]) == 1
    shown = first["offers"][0]
    assert shown["offer_id"] in {"a", "b"}
    assert 0 < shown["propensity"] <= 1
    assert len({b["decision_id"] for b in bodies}) == 40  # every answer is a decision
    # Every decision, holdout ones included, reaches Postgres with its propensities.
    wait(lambda: all(logged(engine, b["decision_id"]) for b in bodies), 30, "decisions")
    row = logged(engine, first["decision_id"])
    assert row is not None
    assert row["strategy"] == "bandit"
    assert row["offers"] == [
        {"offer_id": shown["offer_id"], "rank": 0, "propensity": pytest.approx(shown["propensity"])}
    ]


def test_feedback_is_stored_once_and_the_bandit_learns_the_better_offer(shop: Shop) -> None:
    shop.create_offer("good")
    shop.create_offer("poor")
    shop.serving({"good", "poor"})
    for _ in range(15):  # rounds: serve 20 visitors, convert every "good" shown
        events = []
        for _i in range(20):
            answer = shop.offers(f"v-{uuid.uuid4().hex[:8]}").json()
            for offer in answer["offers"]:
                if offer["offer_id"] == "good" and answer["strategy"] == "bandit":
                    events.append(
                        {
                            "decision_id": answer["decision_id"],
                            "offer_id": "good",
                            "kind": "conversion",
                            "value": 10.0,
                        }
                    )
        if events:
            assert shop.feedback(events).json()["accepted"] == len(events)
    replay = shop.feedback(events).json()
    assert (replay["accepted"], replay["duplicates"]) == (0, len(events))

    def prefers_good() -> bool:
        picks = Counter(
            o["offer_id"]
            for _ in range(40)
            for o in shop.offers(f"x-{uuid.uuid4().hex}").json()["offers"]
        )
        return picks["good"] >= 30

    wait(prefers_good, 30, "the bandit to prefer the converting offer")


def test_feedback_naming_an_unknown_decision_or_offer_is_rejected_by_field(shop: Shop) -> None:
    shop.create_offer("only")
    shop.serving({"only"})
    # A customer outside the placement's holdout (5% by default, by the customer's hash,
    # so some tenants' "c-1" is held out and shown nothing).
    answers = (shop.offers(f"c-{i}").json() for i in range(1, 100))
    decision = next(a for a in answers if a["strategy"] != "holdout")["decision_id"]
    result = shop.feedback(
        [
            {"decision_id": decision, "offer_id": "only", "kind": "click"},
            {"decision_id": uuid.uuid4().hex, "offer_id": "only", "kind": "click"},
            {"decision_id": decision, "offer_id": "other", "kind": "click"},
            {"decision_id": decision, "offer_id": "only", "kind": "purchase"},
            {"decision_id": decision, "offer_id": "only", "kind": "click", "tenant_id": 1},
        ]
    ).json()
    assert result["accepted"] == 1, result
    fields = {r["index"]: [e["field"] for e in r["errors"]] for r in result["rejected"]}
    assert fields == {1: ["decision_id"], 2: ["offer_id"], 3: ["kind"], 4: ["tenant_id"]}
    assert result["rejected_count"] == 4


def test_holdout_is_sticky_per_customer_and_placement(shop: Shop) -> None:
    shop.create_offer("deal")
    shop.create_offer("default-deal")
    response = shop.client.put(
        "/v1/placements/home",
        json={"holdout_share": 0.5, "default_offer_id": "default-deal"},
        headers=auth(shop.admin),
    )
    assert response.status_code == 200, response.text
    wait(
        lambda: (
            shop.offers("probe").json().get("strategy") in {"holdout", "bandit"}
            and _holdout_share(shop) > 0.2
        ),
        30,
        "the new holdout share",
    )
    customers = [f"sticky-{i}" for i in range(60)]
    first = {c: shop.offers(c).json()["strategy"] for c in customers}
    again = {c: shop.offers(c).json()["strategy"] for c in customers}
    assert first == again
    held = [c for c, s in first.items() if s == "holdout"]
    assert 15 <= len(held) <= 45
    assert all(
        o["offer_id"] == "default-deal" for c in held for o in shop.offers(c).json()["offers"]
    )


def _holdout_share(shop: Shop) -> float:
    strategies = [shop.offers(f"h-{i}").json()["strategy"] for i in range(40)]
    return strategies.count("holdout") / len(strategies)


def test_a_customer_without_marketing_consent_gets_the_default_unpersonalised(
    shop: Shop, engine: Engine, api: str
) -> None:
    import httpx

    ingest_key = _ingest_key(shop, engine)
    with httpx.Client(base_url=api) as ingest:
        response = ingest.post(
            "/v1/customers",
            json={"customer_id": "no-mail", "consent": {"marketing": False}},
            headers=auth(ingest_key),
        )
        assert response.status_code == 200, response.text
    shop.create_offer("promo")
    shop.create_offer("plain")
    shop.client.put(
        "/v1/placements/home",
        json={"holdout_share": 0, "default_offer_id": "plain"},
        headers=auth(shop.admin),
    )

    def default_answer() -> dict[str, Any] | None:  # consent cached, the default in place
        answer: dict[str, Any] = shop.offers("no-mail").json()
        shown = [o["offer_id"] for o in answer.get("offers", [])]
        return answer if answer.get("strategy") == "default" and shown == ["plain"] else None

    wait(lambda: default_answer() is not None, 30, "the default for no consent")
    answer = default_answer()
    assert answer is not None
    assert answer["segment"] is None
    assert [o["offer_id"] for o in answer["offers"]] == ["plain"]
    wait(lambda: logged(engine, answer["decision_id"]) is not None, 30, "the decision")
    row = logged(engine, answer["decision_id"])
    assert row is not None
    assert row["personalised"] is False
    assert row["segment_key"] is None


def _ingest_key(shop: Shop, engine: Engine) -> str:
    from shared.auth import create_api_key
    from shared.db import session_scope
    from tests.support.http import tenant_of

    tenant = tenant_of(engine, shop.admin)
    with session_scope(engine) as session:
        name = session.execute(
            text("SELECT name FROM tenant WHERE id = :t"), {"t": tenant}
        ).scalar_one()
        return create_api_key(session, client="shop", scopes=["ingest:write"], tenant=name).key


def test_orders_with_an_offers_code_or_after_a_click_convert_its_decision(
    shop: Shop, engine: Engine, api: str
) -> None:
    import httpx

    ingest_key = _ingest_key(shop, engine)
    shop.configure(holdout_share=0)
    shop.create_offer("coded", discount_code="TAKE10")
    shop.serving({"coded"})
    order = {
        "placed_at": "2026-01-01T00:00:00Z",
        "currency": "EUR",
        "total": 42.5,
        "lines": [{"product_id": "p-1", "quantity": 1, "unit_price": 42.5}],
    }
    with httpx.Client(base_url=api) as ingest:
        for who in ("coder", "clicker"):
            ingest.post("/v1/customers", json={"customer_id": who}, headers=auth(ingest_key))
        # Known customers' decisions carry their customer: wait until the cache knows them.
        wait(
            lambda: all(_knows(engine, shop, who) for who in ("coder", "clicker")),
            60,
            "the customers cached",
        )
        clicker = shop.offers("clicker").json()
        wait(lambda: logged(engine, clicker["decision_id"]) is not None, 30, "the decisions")
        clicked = {"decision_id": clicker["decision_id"], "offer_id": "coded", "kind": "click"}
        assert shop.feedback(clicked).json()["accepted"] == 1
        now = _now(engine)
        ingest.post(
            "/v1/orders",
            headers=auth(ingest_key),
            json=[
                order
                | {
                    "order_id": "o-code",
                    "customer_id": "coder",
                    "discount_code": "TAKE10",
                    "placed_at": now,
                },
                order | {"order_id": "o-click", "customer_id": "clicker", "placed_at": now},
                order | {"order_id": "o-none", "customer_id": "coder", "placed_at": now},
            ],
        )
    wait(lambda: len(_conversions(engine, shop)) == 2, 90, "the orders' conversions")
    # The code converts the customer's latest decision showing its offer; the click, its own.
    assert _conversions(engine, shop) == {
        ("order:o-code", "coder", 42.5),
        ("order:o-click", "clicker", 42.5),
    }
    assert clicker["decision_id"] in _converted_decisions(engine)


def _knows(engine: Engine, shop: Shop, who: str) -> bool:
    decision = shop.offers(who).json()
    wait(lambda: logged(engine, decision["decision_id"]) is not None, 30, "a decision")
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT customer_pk IS NOT NULL FROM decision WHERE decision_id = :d"),
                {"d": decision["decision_id"]},
            ).scalar_one()
        )


def _now(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
            ).scalar_one()
        )


def _conversions(engine: Engine, shop: Shop) -> set[tuple[str, str, float]]:
    """(event id, whose decision it converted, value) of the orders' conversions."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT f.event_id, c.customer_id, f.value FROM feedback f "
                "JOIN decision d ON d.decision_id = f.decision_id "
                "JOIN customer c ON c.id = d.customer_pk "
                "WHERE f.tenant_id = :t AND f.kind = 'conversion' AND f.event_id LIKE 'order:%'"
            ),
            {"t": tenant_of(engine, shop.admin)},
        ).all()
    return {(e, c, float(v)) for e, c, v in rows}


def _converted_decisions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        found = conn.execute(text("SELECT decision_id FROM feedback WHERE kind = 'conversion'"))
        return set(found.scalars())


def test_parameters_at_their_bounds_are_answered_like_any_other_and_the_key_comes_first(
    shop: Shop,
) -> None:
    """Plainly valid parameters take a shorter path than the rest: both answer alike."""
    # No holdout: the customer's hash under this run's tenant must not get the default.
    shop.configure(holdout_share=0)
    shop.create_offer("edge-a")
    shop.create_offer("edge-b")
    shop.create_offer("edge-c")
    shop.serving({"edge-a", "edge-b", "edge-c"})
    customer = "c" * 128  # the longest id allowed
    plain = [shop.offers(customer, n=10) for _ in range(20)]
    assert {a.status_code for a in plain} == {200}
    assert {len(a.json()["offers"]) for a in plain} == {3}  # n up to 10, 3 offers to show
    assert {a.json()["customer_id"] for a in plain} == {customer}
    # Valid for FastAPI too, but not plainly so: the generic path answers the same way.
    padded = [shop.offers(customer, n="03") for _ in range(20)]
    assert {a.status_code for a in padded} == {200}
    assert {len(a.json()["offers"]) for a in padded} == {3}
    # A repeated parameter: the last one counts, as FastAPI reads it; unknown ones are ignored.
    repeated = shop.client.get(
        f"/v1/offers/{customer}",
        params=[("placement", "nowhere"), ("placement", "home"), ("n", "2"), ("x", "1")],
        headers=auth(shop.storefront),
    )
    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["placement"] == "home"
    assert len(repeated.json()["offers"]) == 2
    # The key is checked before the parameters: no key, 401 whatever the parameters.
    for params in ({"n": "2"}, {"n": "11"}, {"placement": "Home"}):
        anonymous = shop.client.get(f"/v1/offers/{customer}", params=params)
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()["errors"][0]["field"] == "Authorization"
    too_many = shop.offers(customer, n=11)
    assert too_many.status_code == 422
    assert [e["field"] for e in too_many.json()["errors"]] == ["n"]
    too_long = shop.offers("c" * 129)
    assert too_long.status_code == 422
    assert [e["field"] for e in too_long.json()["errors"]] == ["customer_id"]
