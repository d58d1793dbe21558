"""Deterministic, realistic demo-shop data.

``generate(customers, seed, out)`` writes a small fashion-and-home shop's data as JSON
Lines, one file per record kind (``customers``, ``products``, ``orders``, ``events``,
``reviews``, ``transcripts``), plus ``truth.csv`` naming each customer's persona. Every
record validates against the ingest record contract. The same ``seed`` (and ``now``)
always gives byte-identical files; times are relative to ``now``, which defaults to the
fixed ``DEFAULT_NOW`` rather than the wall clock.

Large, cheap event streams for benchmarks are ``segmenta.demo.event_stream``'s.

Personas (exact distributions in ``personas.PERSONA_SPECS``; table also in README.md):

====================  =====  ========  ==========  =======  =====  ================================
persona               share  buys      last order  items    disc.  events, reviews, support
====================  =====  ========  ==========  =======  =====  ================================
champion              10 %   9-20 d    buying      premium  5 %    app sessions; 4-5 stars
loyal_regular         20 %   45-90 d   buying      any      10 %   store visits, newsletter; ~4
bargain_hunter        18 %   20-45 d   buying      cheap    90 %   searches, email clicks; ~3
new_customer          15 %   once      0-28 d      any      90 %   signed up < 30 d ago; few events
lapsing_high_spender  12 %   25-60 d   200-480 d   premium  5 %    email opens; 1-2; cancel calls
window_shopper        15 %   never     -           -        -      page views, carts, checkouts
unhappy_returner      10 %   40-90 d   buying      any      20 %   returns, refunds; 1-2 stars
====================  =====  ========  ==========  =======  =====  ================================

"buys": the customer's own mean gap between orders, from the first order (soon after
signup) on. "last order": ``buying`` personas keep that rhythm up to ``now``, so their
latest order is wherever it put it (champions' about a week ago on average); lapsing
high spenders stopped, and new customers placed their only order, that many days ago.
Customers sign up all through the history, so it is steady in time: an earlier window of
the shop looks much like the latest one. About 8 % of window shoppers have a single old
order.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import IO, Any, TypeVar

from segmenta.demo import texts
from segmenta.demo.anomalies import TRUTH_FILE as ANOMALY_TRUTH
from segmenta.demo.anomalies import plant_anomalies
from segmenta.demo.formats import compact_json, iso_time
from segmenta.demo.personas import (
    PERSONA_BY_NAME,
    PERSONAS,
    Persona,
    event_details,
    fake_phone,
    persona_quotas,
    review_language,
)
from segmenta.demo.texts import Product, build_catalogue, product_count

__all__ = ["DAY", "DEFAULT_NOW", "PERSONAS", "customer_id", "generate"]

DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)
FILES = ("customers", "products", "orders", "events", "reviews", "transcripts")
DAY = 86_400
FIRST_ORDER_DAYS = 30  # a buyer starts buying within this many days of signing up
GAP_SHAPE = 3.0  # gamma shape of the days between orders: regular, not clockwork
K = TypeVar("K")


def _pick(rng: random.Random, weights: Mapping[K, float]) -> K:
    return rng.choices(list(weights), list(weights.values()))[0]


def customer_id(index: int) -> str:
    """The id of the ``index``-th customer, counting from 1: ``c-000001``."""
    return f"c-{index:06d}"


@dataclass
class _Order:
    order_id: str
    at: float
    channel: str
    total: float
    lines: list[dict[str, Any]]


class _Shop:
    """Writes one customer after another straight to the open files."""

    def __init__(self, seed: int, now: datetime, customers: int, files: Mapping[str, IO[str]]):
        self.rng = random.Random(seed)
        self.now = now.timestamp()
        self.files = files
        self.counts = dict.fromkeys(FILES, 0)
        self.products = build_catalogue(product_count(customers), self.rng)
        self.by_id = {p.product_id: p for p in self.products}
        by_price = sorted(self.products, key=lambda p: (p.price, p.product_id))
        cut = len(by_price) * 2 // 5
        self.pools: dict[str, list[Product]] = {
            "cheap": by_price[:cut],
            "premium": by_price[len(by_price) // 2 :],
            "any": self.products,
        }
        for product in self.products:
            record = {"product_id": product.product_id, "name": product.name}
            self._write(
                "products", {**record, "category": product.category, "price": product.price}
            )

    def _write(self, kind: str, record: Mapping[str, Any]) -> None:
        self.counts[kind] += 1
        self.files[kind].write(compact_json(record) + "\n")

    def _ago(self, days: tuple[float, float], signup: float) -> float:
        """A time ``days`` ago, never before ``signup`` (days ago) nor after now."""
        ago = self.rng.uniform(*days)
        if ago >= signup:
            ago = self.rng.uniform(0, signup)
        return self.now - ago * DAY

    def customer(self, index: int, persona: Persona) -> None:
        rng = self.rng
        cid = customer_id(index)
        signup = rng.uniform(*persona.signup_days)
        country = _pick(rng, texts.COUNTRIES)
        first, last = rng.choice(texts.FIRST_NAMES), rng.choice(texts.LAST_NAMES)
        record: dict[str, Any] = {
            "customer_id": cid,
            "email": f"{first}.{last}.{index:06d}@{rng.choice(('example.com', 'example.org'))}",
        }
        if (phone := fake_phone(rng, country)) and rng.random() < 0.8:
            record["phone"] = phone
        record["signup_at"] = iso_time(self.now - signup * DAY)
        record["attributes"] = {
            "country": country,
            "birth_year": rng.randint(1950, 2007),
            "gender": _pick(rng, texts.GENDERS),
        }
        record["consent"] = {
            "email": rng.random() < persona.email_consent,
            "sms": rng.random() < 0.3,
        }
        self._write("customers", record)
        orders = self._orders(cid, persona, signup)
        self._events(cid, persona, signup, orders)
        if rng.random() < persona.review_prob:
            self._reviews(cid, persona, signup, country, orders)
        if rng.random() < persona.transcript_prob:
            for _ in range(2 if rng.random() < 0.1 else 1):
                self._transcript(cid, persona, signup)

    def _order_ages(self, persona: Persona, signup: float) -> list[float]:
        """How many days ago each of the customer's orders was placed, the latest first.

        A customer buys at their own rhythm (a mean gap drawn from the persona's range,
        each gap around it) from their first order, soon after signing up: to this day
        where the persona still buys, else up to the order at which they stopped. As
        customers sign up all through the history and nobody's latest order is placed by
        hand near ``now``, any past day of the shop looks much like today.
        """
        rng = self.rng
        first = signup - rng.uniform(0, min(FIRST_ORDER_DAYS, signup))
        mean_gap = rng.uniform(*persona.order_gap_days)

        def gap() -> float:
            return rng.gammavariate(GAP_SHAPE, mean_gap / GAP_SHAPE)

        if persona.last_order_days is None:  # still buying: forward from the first order
            ages, age = [], first
            while age > 0:
                ages.append(age)
                age -= gap()
            return ages[::-1]
        last = rng.uniform(*persona.last_order_days)
        if last >= signup:
            last = rng.uniform(0, signup)
        ages = [last]
        if mean_gap <= 0:
            return ages
        age = last + gap()
        while age < first:
            ages.append(age)
            age += gap()
        return ages

    def _orders(self, cid: str, persona: Persona, signup: float) -> list[_Order]:
        rng = self.rng
        if rng.random() >= persona.order_prob:
            return []
        # At least an hour ago: room for follow-ups.
        ages = [max(age, 0.05) for age in self._order_ages(persona, signup)]
        pool = self.pools[persona.pool]
        orders = []
        for age in sorted(ages, reverse=True):
            code = None
            if rng.random() < persona.discount_share:
                code = "WELCOME15" if persona.name == "new_customer" else None
                code = code or rng.choice(list(texts.DISCOUNT_CODES))
            off = texts.DISCOUNT_CODES[code] if code else 0
            lines: list[dict[str, Any]] = [
                {
                    "product_id": product.product_id,
                    "quantity": 1 if rng.random() < 0.75 else rng.randint(1, persona.max_quantity),
                    "unit_price": round(product.price * (100 - off) / 100, 2),
                }
                for product in rng.sample(pool, rng.randint(*persona.lines))
            ]
            total = round(sum(line["quantity"] * line["unit_price"] for line in lines), 2)
            order = _Order(
                "", self.now - age * DAY, _pick(rng, persona.order_channels), total, lines
            )
            order.order_id = f"o-{self.counts['orders'] + 1:07d}"
            record: dict[str, Any] = {
                "order_id": order.order_id,
                "customer_id": cid,
                "placed_at": iso_time(order.at),
                "currency": "EUR",
                "total": total,
                "channel": order.channel,
            }
            if code:
                record["discount_code"] = code
            record["lines"] = lines
            self._write("orders", record)
            orders.append(order)
        return orders

    def _events(self, cid: str, persona: Persona, signup: float, orders: list[_Order]) -> None:
        rng = self.rng
        weights = dict(persona.event_weights)
        if not orders:
            for kind in ("purchase", "return", "refund"):
                weights.pop(kind, None)
        digital = {c: w for c, w in persona.order_channels.items() if c != "store"}
        events: list[tuple[float, str, str, dict[str, Any]]] = []
        for _ in range(rng.randint(*persona.events)):
            kind = _pick(rng, weights)
            if kind in ("purchase", "return", "refund"):
                order = rng.choice(orders)
                line = rng.choice(order.lines)
                if kind == "purchase":
                    at, channel = order.at + rng.uniform(5, 300), order.channel
                    props: dict[str, Any] = {"order_id": order.order_id, "total": order.total}
                elif kind == "return":
                    at, channel = order.at + rng.uniform(3, 30) * DAY, rng.choice(("web", "store"))
                    reason = rng.choice(texts.RETURN_REASONS)
                    props = {"order_id": order.order_id, "product_id": line["product_id"]}
                    props["reason"] = reason
                else:
                    at, channel = order.at + rng.uniform(7, 40) * DAY, "web"
                    amount = round(line["quantity"] * line["unit_price"], 2)
                    props = {"order_id": order.order_id, "amount": amount}
                at = min(at, self.now - rng.uniform(60, 3600))
            else:
                at = self._ago(persona.event_window_days, signup)
                pool = self.pools[persona.pool]
                channel, props = event_details(rng, kind, pool, digital, persona.pool == "cheap")
            events.append((at, kind, channel, props))
        for at, kind, channel, props in sorted(events, key=lambda e: e[0]):
            record: dict[str, Any] = {
                "event_id": f"e-{self.counts['events'] + 1:08d}",
                "customer_id": cid,
            }
            record.update(type=kind, occurred_at=iso_time(at), channel=channel, properties=props)
            self._write("events", record)

    def _reviews(
        self, cid: str, persona: Persona, signup: float, country: str, orders: list[_Order]
    ) -> None:
        rng = self.rng
        bought = [(o, line["product_id"]) for o in orders for line in o.lines]
        for _ in range(rng.randint(*persona.reviews)):
            if bought:
                order, product_id = bought.pop(rng.randrange(len(bought)))
                at = min(order.at + rng.uniform(3, 25) * DAY, self.now - 60)
                product = self.by_id[product_id]
            else:
                product = rng.choice(self.pools[persona.pool])
                product_id = product.product_id
                at = self._ago(persona.event_window_days, signup)
            rating = _pick(rng, persona.ratings)
            tone = "positive" if rating >= 4 else "negative" if rating <= 2 else "mixed"
            if rng.random() < 0.05:  # the stars and the words disagree
                tone = "negative" if tone == "positive" else "positive"
            language = review_language(rng, country)
            record = {
                "review_id": f"r-{self.counts['reviews'] + 1:07d}",
                "customer_id": cid,
                "product_id": product_id,
                "rating": rating,
                "text": texts.review_text(rng, language, tone, persona.aspects, product),
                "language": language,
                "created_at": iso_time(at),
            }
            self._write("reviews", record)

    def _transcript(self, cid: str, persona: Persona, signup: float) -> None:
        rng = self.rng
        channel = _pick(rng, {"chat": 0.55, "call": 0.3, "email": 0.15})
        arc = _pick(rng, persona.arcs)
        ending = _pick(rng, persona.endings) if persona.endings else "manager"
        bot = channel == "chat" and rng.random() < 0.35
        lines = texts.transcript_turns(rng, arc, rng.choice(persona.topics), ending, bot)
        gap = {"chat": (10, 120), "call": (5, 45), "email": (1800, 6 * 3600)}[channel]
        started = self._ago(persona.transcript_window_days, signup)
        offsets = list(accumulate(rng.uniform(*gap) for _ in lines))
        started = min(started, self.now - offsets[-1] - 60)
        turns = [
            {"speaker": speaker, "text": text, "at": iso_time(started + offset)}
            for (speaker, text), offset in zip(lines, offsets, strict=True)
        ]
        record = {
            "transcript_id": f"t-{self.counts['transcripts'] + 1:06d}",
            "customer_id": cid,
            "channel": channel,
            "started_at": iso_time(started),
            "turns": turns,
        }
        self._write("transcripts", record)


def generate(
    customers: int,
    seed: int,
    out: Path,
    *,
    now: datetime | None = None,
    anomalies: bool = True,
) -> dict[str, int]:
    """Write the demo shop's files into ``out``; return the number of records per kind.

    ``now`` (default ``DEFAULT_NOW``) anchors every timestamp; naive values count as UTC.
    ``anomalies=False`` leaves out the planted anomalies (every customer behaves as its
    persona in ``truth.csv``; no ``anomalies.csv``).
    """
    if customers < 0:
        raise ValueError("customers must not be negative")
    now = now or DEFAULT_NOW
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        kind: (out / f"{kind}.jsonl").open("w", encoding="utf-8", newline="\n") for kind in FILES
    }
    try:
        shop = _Shop(seed, now, customers, files)
        names = [name for name, n in persona_quotas(customers).items() for _ in range(n)]
        shop.rng.shuffle(names)
        with (out / "truth.csv").open("w", encoding="utf-8", newline="") as truth:
            writer = csv.writer(truth, lineterminator="\n")
            writer.writerow(("customer_id", "persona"))
            for index, name in enumerate(names, start=1):
                shop.customer(index, PERSONA_BY_NAME[name])
                writer.writerow((customer_id(index), name))
    finally:
        for handle in files.values():
            handle.close()
    # A few customers get a planted recent change (anomalies.csv names them).
    if not anomalies:
        (out / ANOMALY_TRUTH).unlink(missing_ok=True)  # none from an earlier run either
        return dict(shop.counts)
    return {**shop.counts, **plant_anomalies(out, seed=seed, now=now, customers=customers)}
