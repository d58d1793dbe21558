"""Behaviour types of the demo shop's customers.

Every demo customer belongs to exactly one persona; ``truth.csv`` records which. A persona
fixes the *distributions* the generator draws from (how long ago the customer signed up,
how many orders they place and when, how much they spend, how often they use a discount
code, which events they cause, how they review, how support conversations with them go),
so personas stay separable on behaviour alone: recency, frequency, monetary value,
discount share, event mix and sentiment. See ``segmenta/demo/README.md`` for the table.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from segmenta.demo.texts import (
    BARGAIN_TERMS,
    CAMPAIGNS,
    SEARCH_TERMS,
    STORES,
    SUPPORT_TOPICS,
    Product,
)

Pool = Literal["cheap", "premium", "any"]
Arc = Literal["neutral", "recovered", "escalated"]
Ending = Literal["cancel", "refund", "competitor", "manager"]


@dataclass(frozen=True)
class Persona:
    """Distributions for one behaviour type. Ranges are inclusive ``(low, high)``."""

    name: str
    description: str
    share: float
    signup_days: tuple[float, float]
    """How long ago the customer signed up, in days."""
    order_prob: float
    """Probability that the customer has any orders at all."""
    order_gap_days: tuple[float, float]
    """The customer's own mean days between orders, drawn once per customer; each gap
    varies around it. Orders run at that rhythm from the first one (soon after signup) to
    the most recent. ``(0, 0)``: a single order."""
    last_order_days: tuple[float, float] | None
    """Days between the most recent order and ``now``: when this customer stopped buying
    (or placed their single order). ``None``: still buying, so the most recent order is
    wherever the customer's own rhythm put it before ``now``."""
    lines: tuple[int, int]
    max_quantity: int
    pool: Pool
    discount_share: float
    order_channels: dict[str, float]
    events: tuple[int, int]
    event_weights: dict[str, float]
    event_window_days: tuple[float, float]
    """Non-purchase events happen this many days ago, spread evenly over the window (over
    the customer's time since signup where that is shorter)."""
    email_consent: float
    review_prob: float
    reviews: tuple[int, int]
    ratings: dict[int, float]
    aspects: dict[str, float]
    transcript_prob: float
    arcs: dict[Arc, float]
    endings: dict[Ending, float] = field(default_factory=dict)
    topics: tuple[str, ...] = ("late_delivery", "wrong_size", "damaged", "double_charge")
    transcript_window_days: tuple[float, float] = (0.0, 365.0)


_ASPECTS_ALL = {
    "delivery": 1.0,
    "price": 1.0,
    "quality": 1.0,
    "fit": 1.0,
    "service": 1.0,
    "defect": 1.0,
}

PERSONA_SPECS: tuple[Persona, ...] = (
    Persona(
        name="champion",
        description="Buys very often and recently, spends a lot, rarely uses discounts, "
        "lives in the app and writes glowing reviews.",
        share=0.10,
        signup_days=(400, 1500),
        order_prob=1.0,
        last_order_days=None,
        order_gap_days=(9, 20),
        lines=(2, 5),
        max_quantity=2,
        pool="premium",
        discount_share=0.05,
        order_channels={"app": 0.6, "web": 0.3, "store": 0.1},
        events=(73, 122),
        event_weights={
            "app_session": 30,
            "page_view": 12,
            "email_open": 14,
            "email_click": 10,
            "add_to_cart": 10,
            "checkout_start": 6,
            "purchase": 18,
        },
        event_window_days=(0, 365),
        email_consent=0.9,
        review_prob=0.6,
        reviews=(1, 4),
        ratings={5: 0.6, 4: 0.35, 3: 0.05},
        aspects={**_ASPECTS_ALL, "quality": 3.0, "delivery": 2.0},
        transcript_prob=0.08,
        arcs={"neutral": 0.7, "recovered": 0.3},
    ),
    Persona(
        name="loyal_regular",
        description="Steady buyer every month or two of mid-priced items for years, often in "
        "store, opens the newsletter, mostly satisfied.",
        share=0.20,
        signup_days=(365, 1800),
        order_prob=1.0,
        last_order_days=None,
        order_gap_days=(45, 90),
        lines=(1, 3),
        max_quantity=1,
        pool="any",
        discount_share=0.1,
        order_channels={"store": 0.55, "web": 0.35, "app": 0.1},
        events=(8, 20),
        event_weights={
            "email_open": 28,
            "store_visit": 26,
            "page_view": 18,
            "email_click": 8,
            "add_to_cart": 4,
            "purchase": 16,
        },
        event_window_days=(0, 365),
        email_consent=0.85,
        review_prob=0.4,
        reviews=(1, 3),
        ratings={5: 0.35, 4: 0.45, 3: 0.15, 2: 0.05},
        aspects=_ASPECTS_ALL,
        transcript_prob=0.08,
        arcs={"neutral": 0.6, "recovered": 0.35, "escalated": 0.05},
        endings={"manager": 1.0},
    ),
    Persona(
        name="bargain_hunter",
        description="Orders often but only cheap items, nearly always with a discount "
        "code; searches a lot and clicks sale emails.",
        share=0.18,
        signup_days=(90, 1000),
        order_prob=1.0,
        last_order_days=None,
        order_gap_days=(20, 45),
        lines=(1, 4),
        max_quantity=3,
        pool="cheap",
        discount_share=0.9,
        order_channels={"web": 0.7, "app": 0.3},
        events=(30, 61),
        event_weights={
            "search": 36,
            "page_view": 24,
            "email_click": 16,
            "email_open": 10,
            "add_to_cart": 8,
            "purchase": 6,
        },
        event_window_days=(0, 365),
        email_consent=0.95,
        review_prob=0.3,
        reviews=(1, 2),
        ratings={5: 0.15, 4: 0.3, 3: 0.4, 2: 0.15},
        aspects={**_ASPECTS_ALL, "price": 5.0},
        transcript_prob=0.1,
        arcs={"neutral": 0.6, "recovered": 0.3, "escalated": 0.1},
        endings={"competitor": 0.7, "manager": 0.3},
        topics=("late_delivery", "discount_code", "double_charge"),
    ),
    Persona(
        name="new_customer",
        description="Signed up within the last month and placed a single first order; "
        "a handful of browsing events.",
        share=0.15,
        signup_days=(3, 30),
        order_prob=1.0,
        last_order_days=(0, 28),
        order_gap_days=(0, 0),
        lines=(1, 3),
        max_quantity=1,
        pool="any",
        discount_share=0.9,
        order_channels={"web": 0.6, "app": 0.4},
        events=(5, 9),
        event_weights={
            "page_view": 40,
            "app_session": 20,
            "search": 10,
            "add_to_cart": 10,
            "checkout_start": 6,
            "purchase": 8,
            "email_open": 6,
        },
        event_window_days=(0, 30),
        email_consent=0.7,
        review_prob=0.1,
        reviews=(1, 1),
        ratings={5: 0.3, 4: 0.4, 3: 0.2, 2: 0.1},
        aspects={**_ASPECTS_ALL, "delivery": 3.0},
        transcript_prob=0.08,
        arcs={"neutral": 0.8, "recovered": 0.2},
        topics=("late_delivery", "wrong_size"),
        transcript_window_days=(0, 20),
    ),
    Persona(
        name="lapsing_high_spender",
        description="Spent heavily on premium items one to two years ago and has bought "
        "nothing since; only opens emails; angry support calls about cancelling, refunds "
        "or moving to a competitor.",
        share=0.12,
        signup_days=(800, 2000),
        order_prob=1.0,
        last_order_days=(200, 480),
        order_gap_days=(25, 60),
        lines=(2, 4),
        max_quantity=2,
        pool="premium",
        discount_share=0.05,
        order_channels={"web": 0.5, "store": 0.3, "app": 0.2},
        events=(9, 22),
        event_weights={
            "email_open": 55,
            "support_contact": 20,
            "page_view": 10,
            "purchase": 10,
            "refund": 5,
        },
        event_window_days=(0, 365),
        email_consent=0.6,
        review_prob=0.35,
        reviews=(1, 3),
        ratings={1: 0.3, 2: 0.4, 3: 0.2, 4: 0.1},
        aspects={**_ASPECTS_ALL, "service": 4.0, "delivery": 2.0},
        transcript_prob=0.45,
        arcs={"escalated": 0.8, "recovered": 0.2},
        endings={"cancel": 0.35, "competitor": 0.35, "refund": 0.15, "manager": 0.15},
        topics=("late_delivery", "double_charge", "membership", "damaged"),
        transcript_window_days=(120, 260),
    ),
    Persona(
        name="window_shopper",
        description="Browses constantly, fills carts and starts checkouts but (almost) never buys.",
        share=0.15,
        signup_days=(30, 700),
        order_prob=0.08,
        last_order_days=(120, 400),
        order_gap_days=(0, 0),
        lines=(1, 1),
        max_quantity=1,
        pool="any",
        discount_share=0.5,
        order_channels={"web": 0.7, "app": 0.3},
        events=(61, 122),
        event_weights={
            "page_view": 40,
            "add_to_cart": 26,
            "search": 14,
            "checkout_start": 12,
            "app_session": 8,
        },
        event_window_days=(0, 365),
        email_consent=0.5,
        review_prob=0.05,
        reviews=(1, 1),
        ratings={4: 0.3, 3: 0.5, 2: 0.2},
        aspects={**_ASPECTS_ALL, "price": 3.0},
        transcript_prob=0.02,
        arcs={"neutral": 1.0},
        topics=("size_advice", "stock"),
    ),
    Persona(
        name="unhappy_returner",
        description="Buys now and then, returns and gets refunds for much of it, contacts "
        "support and writes negative reviews about fit and defects.",
        share=0.10,
        signup_days=(120, 900),
        order_prob=1.0,
        last_order_days=None,
        order_gap_days=(40, 90),
        lines=(1, 3),
        max_quantity=2,
        pool="any",
        discount_share=0.2,
        order_channels={"web": 0.8, "app": 0.2},
        events=(10, 20),
        event_weights={
            "return": 22,
            "refund": 16,
            "support_contact": 20,
            "page_view": 18,
            "purchase": 14,
            "email_open": 10,
        },
        event_window_days=(0, 365),
        email_consent=0.7,
        review_prob=0.7,
        reviews=(1, 3),
        ratings={1: 0.5, 2: 0.35, 3: 0.15},
        aspects={**_ASPECTS_ALL, "fit": 5.0, "defect": 5.0, "quality": 2.0},
        transcript_prob=0.45,
        arcs={"escalated": 0.55, "recovered": 0.45},
        endings={"refund": 0.5, "manager": 0.25, "cancel": 0.15, "competitor": 0.1},
        topics=("wrong_size", "damaged", "return_status"),
        transcript_window_days=(0, 200),
    ),
)

PERSONA_BY_NAME: dict[str, Persona] = {p.name: p for p in PERSONA_SPECS}

PERSONAS: dict[str, str] = {p.name: p.description for p in PERSONA_SPECS}
"""Persona name -> one-line description."""


def persona_quotas(customers: int) -> dict[str, int]:
    """How many of ``customers`` get each persona: shares rounded by largest remainder."""
    raw = {p.name: p.share * customers for p in PERSONA_SPECS}
    quotas = {name: int(value) for name, value in raw.items()}
    left = customers - sum(quotas.values())
    by_remainder = sorted(raw, key=lambda name: (-(raw[name] - quotas[name]), name))
    for name in by_remainder[:left]:
        quotas[name] += 1
    return quotas


def fake_phone(rng: random.Random, country: str) -> str | None:
    """A phone number from a range reserved for fiction, where ``country`` has one."""
    tail = rng.randrange(100)
    if country == "SE":
        return f"+46 70 174 06 {max(tail, 5):02d}"  # 070-1740605..699
    if country == "US":
        return f"+1 ({rng.choice((212, 312, 415, 206))}) 555-01{tail:02d}"  # 555-0100..0199
    if country == "GB":
        return f"+44 7700 900{rng.randrange(1000):03d}"  # 07700 900000..900999
    if country == "DE":
        return f"+49 30 23125 {rng.randrange(1000):03d}"  # 030 23125 000..999
    return None


def review_language(rng: random.Random, country: str) -> str:
    """Swedes and Koreans sometimes review in their own language, everyone else in English."""
    draw = rng.random()
    if country == "SE":
        return "sv" if draw < 0.35 else "en"
    if country == "KR":
        return "ko" if draw < 0.4 else "en"
    return "en"


def event_details(
    rng: random.Random,
    kind: str,
    pool: Sequence[Product],
    digital: Mapping[str, float],
    bargain: bool,
) -> tuple[str, dict[str, Any]]:
    """A channel and small ``properties`` object for a non-order event."""
    if kind in ("email_open", "email_click"):
        return "email", {"campaign": rng.choice(CAMPAIGNS)}
    if kind == "app_session":
        return "app", {"duration_s": rng.randint(20, 1800)}
    if kind == "store_visit":
        return "store", {"store": rng.choice(STORES)}
    if kind == "support_contact":
        return rng.choice(("chat", "phone", "email")), {"topic": rng.choice(SUPPORT_TOPICS)}
    channel = rng.choices(list(digital), list(digital.values()))[0] if digital else "web"
    if kind == "search":
        terms = BARGAIN_TERMS if bargain and rng.random() < 0.7 else SEARCH_TERMS
        return channel, {"query": rng.choice(terms)}
    product = rng.choice(pool)
    if kind == "add_to_cart":
        return channel, {"product_id": product.product_id, "quantity": 1}
    if kind == "checkout_start":
        return channel, {"cart_value": product.price, "items": 1}
    return channel, {"product_id": product.product_id}
