"""Feature set v2: v1 plus the customer's reactions to personalised offers, read from the
decision log and feedback that the personalize service keeps."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import text
from sqlmodel import Session

from services.segment.features import FEATURE_SETS, MODEL_FEATURES, compute_features
from services.segment.features.sql import vectors_sql
from tests.segment.test_features import (
    AS_OF,
    DAY,
    create_customer,
    create_order,
    session,
    tenant,
)

pytestmark = pytest.mark.integration

__all__ = ["session", "tenant"]  # the fixtures, shared with the v1 tests

V1, V2 = FEATURE_SETS["v1"], FEATURE_SETS["v2"]
RESPONSE = (
    "has_offer_history",
    "offers_shown",
    "offer_click_rate",
    "offer_dismiss_rate",
    "offer_conversion_rate",
    "discount_conversion_share",
    "offer_conversion_value",
)


def create_offer(session: Session, tenant: int, offer_id: str, kind: str) -> None:
    session.execute(
        text(
            "INSERT INTO offer (tenant_id, offer_id, name, kind, placements)"
            " VALUES (:t, :o, :o, :k, ARRAY['home'])"
        ),
        {"t": tenant, "o": offer_id, "k": kind},
    )


def show(
    session: Session,
    tenant: int,
    customer: int,
    offers: Sequence[str],
    *,
    at: datetime = AS_OF - 2 * DAY,
    personalised: bool = True,
) -> str:
    """A logged decision that showed ``offers`` to the customer; its id."""
    decision_id = uuid.uuid4().hex
    shown = [{"offer_id": o, "rank": r, "propensity": 0.5} for r, o in enumerate(offers, 1)]
    session.execute(
        text(
            "INSERT INTO decision (decision_id, tenant_id, customer_pk, subject_hash, placement,"
            " strategy, offers, eligible, personalised, created_at)"
            " VALUES (:d, :t, :c, :h, 'home', 'bandit', :offers, :eligible, :p, :at)"
        ),
        {
            "d": decision_id,
            "t": tenant,
            "c": customer,
            "h": f"h{customer}",
            "offers": Jsonb(shown),
            "eligible": list(offers),
            "p": personalised,
            "at": at,
        },
    )
    return decision_id


def react(
    session: Session,
    tenant: int,
    customer: int,
    decision_id: str,
    offer_id: str,
    kind: str,
    *,
    value: float | None = None,
    at: datetime = AS_OF - DAY,
) -> None:
    session.execute(
        text(
            "INSERT INTO feedback (tenant_id, event_id, decision_id, subject_hash, customer_pk,"
            " offer_id, kind, value, occurred_at) VALUES (:t, :e, :d, :h, :c, :o, :k, :v, :at)"
        ),
        {
            "t": tenant,
            "e": uuid.uuid4().hex,
            "d": decision_id,
            "h": f"h{customer}",
            "c": customer,
            "o": offer_id,
            "k": kind,
            "v": value,
            "at": at,
        },
    )


def vector(session: Session, customer: int, name: str = "v2") -> dict[str, float]:
    definition = FEATURE_SETS[name]
    query = text(vectors_sql(definition, where="f.customer_pk = :c"))
    row = session.execute(query, {"c": customer}).one()
    return dict(zip(definition.names, row.feature_values, strict=True))


def responses(session: Session, customer: int) -> dict[str, float]:
    return {name: value for name, value in vector(session, customer).items() if name in RESPONSE}


@pytest.fixture
def offers(session: Session, tenant: int) -> None:
    create_offer(session, tenant, "ten-off", "discount")
    create_offer(session, tenant, "free-ship", "free_shipping")
    create_offer(session, tenant, "lookbook", "content")


def test_a_customer_who_converts_on_discounts_differs_from_one_who_ignores_offers(
    session: Session, tenant: int, offers: None
) -> None:
    converter, ignorer, unseen = (create_customer(session, tenant) for _ in range(3))
    for _ in range(4):
        decision = show(session, tenant, converter, ["ten-off", "lookbook"])
        react(session, tenant, converter, decision, "ten-off", "click")
        react(session, tenant, converter, decision, "ten-off", "conversion", value=40.0)
        show(session, tenant, ignorer, ["ten-off", "lookbook"])
    decision = show(session, tenant, ignorer, ["lookbook"])
    react(session, tenant, ignorer, decision, "lookbook", "dismiss")

    compute_features(session, tenant_id=tenant, feature_set="v2", as_of=AS_OF)

    assert responses(session, converter) == {
        "has_offer_history": 1.0,
        "offers_shown": 8.0,
        "offer_click_rate": 0.5,
        "offer_dismiss_rate": 0.0,
        "offer_conversion_rate": 0.5,
        "discount_conversion_share": 1.0,
        "offer_conversion_value": 160.0,
    }
    assert responses(session, ignorer) == {
        "has_offer_history": 1.0,
        "offers_shown": 9.0,
        "offer_click_rate": 0.0,
        "offer_dismiss_rate": pytest.approx(1 / 9),
        "offer_conversion_rate": 0.0,
        "discount_conversion_share": 0.0,
        "offer_conversion_value": 0.0,
    }
    # Never shown an offer: defined values, told apart by the flag.
    assert responses(session, unseen) == dict.fromkeys(RESPONSE, 0.0)


def test_discount_share_tells_discount_takers_from_other_converters(
    session: Session, tenant: int, offers: None
) -> None:
    bargain, content = create_customer(session, tenant), create_customer(session, tenant)
    for customer, takes in ((bargain, "ten-off"), (content, "lookbook")):
        for _ in range(3):
            decision = show(session, tenant, customer, ["ten-off", "lookbook"])
            react(session, tenant, customer, decision, takes, "conversion")

    compute_features(session, tenant_id=tenant, feature_set="v2", as_of=AS_OF)

    assert responses(session, bargain)["offer_conversion_rate"] == 0.5
    assert responses(session, content)["offer_conversion_rate"] == 0.5
    assert responses(session, bargain)["discount_conversion_share"] == 1.0
    assert responses(session, content)["discount_conversion_share"] == 0.0


def test_a_replayed_conversion_counts_once_and_rates_stay_in_range(
    session: Session, tenant: int, offers: None
) -> None:
    customer = create_customer(session, tenant)
    decision = show(session, tenant, customer, ["ten-off"])
    for _ in range(3):  # the storefront and the order attribution both report it
        react(session, tenant, customer, decision, "ten-off", "conversion")

    compute_features(session, tenant_id=tenant, feature_set="v2", as_of=AS_OF)

    got = responses(session, customer)
    assert got["offers_shown"] == 1.0
    assert got["offer_conversion_rate"] == 1.0


def test_without_marketing_consent_reactions_are_not_profiled(
    session: Session, tenant: int, offers: None
) -> None:
    customer = create_customer(session, tenant)
    decision = show(session, tenant, customer, ["ten-off"], personalised=False)
    react(session, tenant, customer, decision, "ten-off", "conversion")

    compute_features(session, tenant_id=tenant, feature_set="v2", as_of=AS_OF)

    assert responses(session, customer) == dict.fromkeys(RESPONSE, 0.0)


def test_offers_and_reactions_after_as_of_are_ignored(
    session: Session, tenant: int, offers: None
) -> None:
    customer = create_customer(session, tenant)
    decision = show(session, tenant, customer, ["ten-off"])
    react(session, tenant, customer, decision, "ten-off", "conversion", at=AS_OF + DAY)
    show(session, tenant, customer, ["ten-off"], at=AS_OF + DAY)

    compute_features(session, tenant_id=tenant, feature_set="v2", as_of=AS_OF)

    got = responses(session, customer)
    assert got["offers_shown"] == 1.0
    assert got["offer_conversion_rate"] == 0.0


def test_v2_keeps_v1_as_its_prefix_and_v1_stays_usable(
    session: Session, tenant: int, offers: None
) -> None:
    customer = create_customer(session, tenant)
    create_order(session, tenant, customer, AS_OF - 10 * DAY)
    create_order(session, tenant, customer, AS_OF - 3 * DAY, discount_code=None)
    decision = show(session, tenant, customer, ["ten-off"])
    react(session, tenant, customer, decision, "ten-off", "conversion")

    compute_features(session, tenant_id=tenant, feature_set="v1", as_of=AS_OF)
    compute_features(session, tenant_id=tenant, feature_set="v2", as_of=AS_OF)

    first, second = vector(session, customer, "v1"), vector(session, customer)
    assert list(second) == [*V1.names[: V1.stored_width], *RESPONSE, *V1.names[V1.stored_width :]]
    assert {name: second[name] for name in first} == first
    assert first["frequency"] == 2.0
    assert set(MODEL_FEATURES["v2"]) > set(MODEL_FEATURES["v1"])
    assert set(MODEL_FEATURES["v2"]) <= set(V2.names)


def test_a_refresh_of_one_customer_computes_what_a_full_run_computes(
    session: Session, tenant: int, offers: None
) -> None:
    customers = [create_customer(session, tenant) for _ in range(3)]
    for n, customer in enumerate(customers):
        for _ in range(n + 1):
            decision = show(session, tenant, customer, ["ten-off", "free-ship"])
            react(session, tenant, customer, decision, "free-ship", "conversion")
    compute_features(session, tenant_id=tenant, feature_set="v2", as_of=AS_OF)
    full = {customer: vector(session, customer) for customer in customers}
    session.execute(text("DELETE FROM customer_features WHERE tenant_id = :t"), {"t": tenant})

    for customer in customers:
        compute_features(
            session, tenant_id=tenant, feature_set="v2", as_of=AS_OF, customer_pks=[customer]
        )

    assert {customer: vector(session, customer) for customer in customers} == full
    assert full[customers[2]]["offers_shown"] == 6.0
    assert full[customers[2]]["discount_conversion_share"] == 0.0
