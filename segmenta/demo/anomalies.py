"""Planted behaviour anomalies in the demo shop, one small group of customers per kind.

After the shop is written, a few customers get a recent change that the anomaly
detection should find: a spend spike (big recent orders), a spend collapse (a frequent
buyer's orders of the last 60 days taken out), a refund burst, a support-contact surge,
sentiment turning negative (negative reviews after positive ones) and a bot-like burst
of page views within minutes. Each group is ``SHARE`` of the customers (at least one
each), disjoint from the others, drawn with its own seeded generator, so the rest of
the shop stays as the personas made it.

The planted ids go to ``anomalies.csv`` (``customer_id,kind``) beside ``truth.csv``:
for evaluation only; nothing of it is uploaded.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from segmenta.demo import texts
from segmenta.demo.formats import compact_json, iso_time

DAY = 86_400
SHARE = 0.004
KINDS = (
    "spend_spike",
    "spend_collapse",
    "refund_burst",
    "support_surge",
    "sentiment_drop",
    "bot_burst",
)
COLLAPSE_DAYS = 60
TRUTH_FILE = "anomalies.csv"
Record = dict[str, Any]


def _read(path: Path) -> list[Record]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _write(path: Path, records: list[Record]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(compact_json(record) + "\n")


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()  # "...Z": UTC


class _Planter:
    def __init__(self, out: Path, seed: int, now: datetime) -> None:
        self.out = out
        self.rng = random.Random(f"anomalies-{seed}")
        self.now = now.timestamp()
        self.records = {kind: _read(out / f"{kind}.jsonl") for kind in _FILES}
        self.orders: dict[str, list[Record]] = defaultdict(list)
        for order in self.records["orders"]:
            self.orders[order["customer_id"]].append(order)
        self.reviews: dict[str, list[Record]] = defaultdict(list)
        for review in self.records["reviews"]:
            self.reviews[review["customer_id"]].append(review)
        self.products = {p["product_id"]: p for p in self.records["products"]}
        self.signup = {c["customer_id"]: _t(c["signup_at"]) for c in self.records["customers"]}
        self.taken: set[str] = set()
        self.serial = 0

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-a{self.serial:06d}"

    def _recent(self, cid: str, low: float = 1, high: float = 25) -> float:
        """A time ``low``..``high`` days ago, never before ``cid`` signed up."""
        signup = self.signup[cid]
        newest = max(self.now - low * DAY, signup)
        return self.rng.uniform(max(self.now - high * DAY, signup), newest)

    def _orders_between(self, cid: str, newest_days: float, oldest_days: float) -> int:
        return sum(
            newest_days * DAY <= self.now - _t(o["placed_at"]) <= oldest_days * DAY
            for o in self.orders[cid]
        )

    def _months_with_orders(self, cid: str) -> int:
        """In how many of the 12 30-day windows before the last 30 days ``cid`` ordered."""
        months = {int((self.now - _t(o["placed_at"])) // (30 * DAY)) for o in self.orders[cid]}
        return len(months & set(range(1, 13)))

    def pick(self, kind: str, count: int) -> list[str]:
        """``count`` customers fit for ``kind`` that no other kind took."""
        fits: dict[str, Callable[[str], bool]] = {
            "spend_spike": lambda c: self._months_with_orders(c) >= 4,
            "spend_collapse": lambda c: self._orders_between(c, COLLAPSE_DAYS, 210) >= 12,
            "refund_burst": lambda c: self._orders_between(c, 30, 400) >= 2,
            "support_surge": lambda c: self._orders_between(c, 0, 400) >= 1,
            "sentiment_drop": lambda c: any(
                r.get("rating", 0) >= 4
                and r.get("language") == "en"
                and self.now - _t(r["created_at"]) > 40 * DAY
                for r in self.reviews[c]
            ),
            "bot_burst": lambda c: True,
        }
        ids = [c["customer_id"] for c in self.records["customers"]]
        candidates = sorted(c for c in ids if c not in self.taken and fits[kind](c))
        chosen = self.rng.sample(candidates, min(count, len(candidates)))
        self.taken.update(chosen)
        return sorted(chosen)

    def spike(self, cid: str) -> None:
        history = self.orders[cid]
        months: dict[int, float] = defaultdict(float)  # spend per 30 days before the last 30
        for order in history:
            month = int((self.now - _t(order["placed_at"])) // (30 * DAY))
            if 1 <= month <= 12:
                months[month] += float(order["total"])
        usual = max(months.values(), default=0.0)
        usual = max(usual, sum(float(o["total"]) for o in history) / max(len(history), 1))
        product = max(
            (self.products[line["product_id"]] for o in history for line in o["lines"]),
            key=lambda p: (p["price"], p["product_id"]),
        )
        for _ in range(2):
            quantity = max(3, int(5 * usual / product["price"]) + 1)  # 10x over two orders
            line = {"product_id": product["product_id"], "quantity": quantity}
            line["unit_price"] = product["price"]
            total = round(quantity * product["price"], 2)
            self.records["orders"].append(
                {
                    "order_id": self._id("o"),
                    "customer_id": cid,
                    "placed_at": iso_time(self._recent(cid)),
                    "currency": "EUR",
                    "total": total,
                    "channel": history[-1]["channel"],
                    "lines": [line],
                }
            )

    def collapse(self, cid: str) -> None:
        cut = self.now - COLLAPSE_DAYS * DAY
        gone = {o["order_id"] for o in self.orders[cid] if _t(o["placed_at"]) > cut}
        self.records["orders"] = [o for o in self.records["orders"] if o["order_id"] not in gone]
        self.records["events"] = [
            e
            for e in self.records["events"]
            if e["customer_id"] != cid
            or (
                (e.get("properties") or {}).get("order_id") not in gone
                and not (e["type"] == "purchase" and _t(e["occurred_at"]) > cut)
            )
        ]

    def _event(self, cid: str, kind: str, at: float, channel: str, props: Record) -> None:
        self.records["events"].append(
            {
                "event_id": self._id("e"),
                "customer_id": cid,
                "type": kind,
                "occurred_at": iso_time(at),
                "channel": channel,
                "properties": props,
            }
        )

    def refunds(self, cid: str) -> None:
        orders = self.orders[cid]
        for _ in range(self.rng.randint(4, 6)):
            order = self.rng.choice(orders)
            amount = round(float(order["total"]) * self.rng.uniform(0.3, 1.0), 2)
            props = {"order_id": order["order_id"], "amount": amount}
            self._event(cid, "refund", self._recent(cid), "web", props)

    def support(self, cid: str) -> None:
        for _ in range(self.rng.randint(5, 8)):
            props = {"topic": self.rng.choice(texts.SUPPORT_TOPICS)}
            channel = self.rng.choice(("chat", "phone", "email"))
            self._event(cid, "support_contact", self._recent(cid), channel, props)

    def sentiment(self, cid: str) -> None:
        language = "en"  # as their earlier review (the lexicon backend reads English)
        bought = [line["product_id"] for o in self.orders[cid] for line in o["lines"]]
        pool = bought or sorted(self.products)
        for _ in range(3):
            product = self.products[self.rng.choice(pool)]
            entry = texts.Product(
                product["product_id"],
                product["name"],
                product["category"],
                product["name"].split()[-1].lower(),
                product["price"],
            )
            aspects = dict.fromkeys(texts.ASPECTS, 1.0)
            self.records["reviews"].append(
                {
                    "review_id": self._id("r"),
                    "customer_id": cid,
                    "product_id": product["product_id"],
                    "rating": 1,
                    "text": texts.review_text(self.rng, language, "negative", aspects, entry),
                    "language": language,
                    "created_at": iso_time(self._recent(cid)),
                }
            )

    def bot(self, cid: str) -> None:
        start = self._recent(cid, 2, 25)
        product_ids = sorted(self.products)
        for _ in range(self.rng.randint(150, 250)):
            props = {"product_id": self.rng.choice(product_ids)}
            self._event(cid, "page_view", start + self.rng.uniform(0, 1500), "web", props)

    def finish(self) -> dict[str, int]:
        self.records["events"].sort(key=lambda e: (e["customer_id"], e["occurred_at"]))
        for kind in ("orders", "events", "reviews"):
            _write(self.out / f"{kind}.jsonl", self.records[kind])
        return {kind: len(self.records[kind]) for kind in _FILES}


_FILES = ("customers", "products", "orders", "events", "reviews")


def plant_anomalies(out: Path, *, seed: int, now: datetime, customers: int) -> dict[str, int]:
    """Plant each kind in ``out``'s files and write ``anomalies.csv``; the new record
    counts of the files it changed."""
    planter = _Planter(out, seed, now)
    count = max(1, round(SHARE * customers)) if customers else 0
    plants = {
        "spend_spike": planter.spike,
        "spend_collapse": planter.collapse,
        "refund_burst": planter.refunds,
        "support_surge": planter.support,
        "sentiment_drop": planter.sentiment,
        "bot_burst": planter.bot,
    }
    planted: list[tuple[str, str]] = []
    for kind in KINDS:
        for cid in planter.pick(kind, count):
            plants[kind](cid)
            planted.append((cid, kind))
    counts = planter.finish()
    with (out / TRUTH_FILE).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("customer_id", "kind"))
        writer.writerows(sorted(planted))
    return {kind: counts[kind] for kind in ("orders", "events", "reviews")}
