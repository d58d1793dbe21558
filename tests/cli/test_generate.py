"""The demo-shop generator: valid, deterministic, consistent and persona-shaped data."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from segmenta.demo.generate import (
    DEFAULT_NOW,
    FILES,
    PERSONAS,
    generate,
)
from segmenta.demo.personas import PERSONA_SPECS, persona_quotas
from services.ingest.records.schemas import (
    CustomerIn,
    EventIn,
    OrderIn,
    ProductIn,
    ReviewIn,
    TranscriptIn,
)

pytestmark = pytest.mark.unit

CUSTOMERS = 700
MODELS: dict[str, type[BaseModel]] = {
    "customers": CustomerIn,
    "products": ProductIn,
    "orders": OrderIn,
    "events": EventIn,
    "reviews": ReviewIn,
    "transcripts": TranscriptIn,
}
Records = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    counts = generate(CUSTOMERS, 7, out)
    assert counts["customers"] == CUSTOMERS
    return out


@pytest.fixture(scope="module")
def records(shop: Path) -> Records:
    return {
        kind: [json.loads(line) for line in (shop / f"{kind}.jsonl").open(encoding="utf-8")]
        for kind in FILES
    }


@pytest.fixture(scope="module")
def truth(shop: Path) -> dict[str, str]:
    with (shop / "truth.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["customer_id", "persona"]
    return {row[0]: row[1] for row in rows[1:]}


def _digest(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_writes_every_file_and_returns_counts(shop: Path, records: Records) -> None:
    names = {path.name for path in shop.iterdir()}
    assert names == {f"{kind}.jsonl" for kind in FILES} | {"truth.csv", "anomalies.csv"}
    counts = generate(CUSTOMERS, 7, shop)  # rewriting in place gives the same counts
    assert counts == {kind: len(records[kind]) for kind in FILES}
    assert all(counts[kind] > 0 for kind in FILES)


@pytest.mark.parametrize("kind", FILES)
def test_every_record_validates(shop: Path, kind: str) -> None:
    model = MODELS[kind]
    lines = (shop / f"{kind}.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines
    for line in lines:
        model.model_validate_json(line)
        assert line == json.dumps(json.loads(line), ensure_ascii=False, separators=(",", ":"))


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate(150, 42, tmp_path / "a")
    generate(150, 42, tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_without_anomalies_only_the_planted_customers_differ(tmp_path: Path) -> None:
    generate(300, 42, tmp_path / "planted")
    generate(300, 42, tmp_path / "plain", anomalies=False)
    generate(300, 42, tmp_path / "plain", anomalies=False)  # over a run that planted none
    planted, plain = _digest(tmp_path / "planted"), _digest(tmp_path / "plain")
    assert "anomalies.csv" in planted
    assert "anomalies.csv" not in plain
    for name in ("customers.jsonl", "products.jsonl", "truth.csv"):
        assert planted[name] == plain[name]
    with (tmp_path / "planted" / "anomalies.csv").open(encoding="utf-8") as handle:
        changed = {row["customer_id"] for row in csv.DictReader(handle)}

    def orders(folder: str) -> dict[str, list[str]]:
        lines = (tmp_path / folder / "orders.jsonl").read_text(encoding="utf-8").splitlines()
        per: defaultdict[str, list[str]] = defaultdict(list)
        for line in lines:
            per[json.loads(line)["customer_id"]].append(line)
        return per

    with_plants, without = orders("planted"), orders("plain")
    differ = {c for c in with_plants.keys() | without.keys() if with_plants[c] != without[c]}
    assert differ
    assert differ <= changed


def test_different_seed_or_now_gives_different_data(tmp_path: Path) -> None:
    generate(150, 42, tmp_path / "a")
    generate(150, 43, tmp_path / "b")
    generate(150, 42, tmp_path / "c", now=datetime(2030, 1, 1, tzinfo=UTC))
    first, other_seed, other_now = (_digest(tmp_path / d) for d in "abc")
    for kind in ("customers", "orders", "events", "truth.csv"):
        name = kind if kind.endswith(".csv") else f"{kind}.jsonl"
        assert first[name] != other_seed[name]
    assert first["orders.jsonl"] != other_now["orders.jsonl"]
    assert first["truth.csv"] == other_now["truth.csv"]


def test_references_point_at_existing_records(records: Records, truth: dict[str, str]) -> None:
    customers = {c["customer_id"] for c in records["customers"]}
    products = {p["product_id"] for p in records["products"]}
    orders = {o["order_id"]: o["customer_id"] for o in records["orders"]}
    assert set(truth) == customers
    assert len(customers) == CUSTOMERS
    assert len(products) == len(records["products"])
    assert len(orders) == len(records["orders"])
    for kind in ("orders", "events", "reviews", "transcripts"):
        assert {r["customer_id"] for r in records[kind]} <= customers, kind
    for order in records["orders"]:
        assert {line["product_id"] for line in order["lines"]} <= products
    for review in records["reviews"]:
        assert review["product_id"] in products
    for event in records["events"]:
        props = event["properties"]
        if "product_id" in props:
            assert props["product_id"] in products
        if "order_id" in props:  # purchases, returns and refunds are the customer's own
            assert orders[props["order_id"]] == event["customer_id"]


def test_order_totals_equal_line_sums(records: Records) -> None:
    for order in records["orders"]:
        assert 1 <= len(order["lines"]) <= 5
        assert order["currency"] == "EUR"
        assert order["channel"] in ("web", "app", "store")
        expected = round(sum(ln["quantity"] * ln["unit_price"] for ln in order["lines"]), 2)
        assert order["total"] == pytest.approx(expected, abs=0.005)
        assert round(order["total"], 2) == order["total"]


def test_times_are_after_signup_and_not_after_now(records: Records) -> None:
    signup = {c["customer_id"]: _at(c["signup_at"]) for c in records["customers"]}
    stamps = [
        *((o["customer_id"], o["placed_at"]) for o in records["orders"]),
        *((e["customer_id"], e["occurred_at"]) for e in records["events"]),
        *((r["customer_id"], r["created_at"]) for r in records["reviews"]),
    ]
    for customer, stamp in stamps:
        assert signup[customer] <= _at(stamp) <= DEFAULT_NOW
    for transcript in records["transcripts"]:
        times = [_at(transcript["started_at"])] + [_at(t["at"]) for t in transcript["turns"]]
        assert times == sorted(times)
        assert times[-1] <= DEFAULT_NOW


def test_every_persona_present_in_its_share(truth: dict[str, str]) -> None:
    counts = Counter(truth.values())
    assert set(counts) == set(PERSONAS) == {p.name for p in PERSONA_SPECS}
    assert len(PERSONAS) >= 6
    assert counts == persona_quotas(CUSTOMERS)
    for persona in PERSONA_SPECS:
        assert abs(counts[persona.name] / CUSTOMERS - persona.share) < 0.01
        assert 0.05 <= persona.share <= 0.25
    assert sum(p.share for p in PERSONA_SPECS) == pytest.approx(1.0)


def test_personas_behave_as_documented(shop: Path, records: Records, truth: dict[str, str]) -> None:
    # The planted anomalies change a few customers away from their persona on purpose
    # (a frequent buyer's recent orders taken out, ...): the personas are the others.
    with (shop / "anomalies.csv").open(encoding="utf-8", newline="") as handle:
        planted = {row["customer_id"] for row in csv.DictReader(handle)}
    orders: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for order in records["orders"]:
        orders[order["customer_id"]].append(order)
    events: dict[str, Counter[str]] = defaultdict(Counter)
    for event in records["events"]:
        events[event["customer_id"]][event["type"]] += 1
    members: dict[str, list[str]] = defaultdict(list)
    for customer, persona in truth.items():
        if customer not in planted:
            members[persona].append(customer)

    def mean(persona: str, value: Callable[[str], float]) -> float:
        return sum(value(c) for c in members[persona]) / len(members[persona])

    def recency(c: str) -> float:
        return min(((DEFAULT_NOW - _at(o["placed_at"])).days for o in orders[c]), default=9999)

    def discount_share(c: str) -> float:
        return sum("discount_code" in o for o in orders[c]) / max(len(orders[c]), 1)

    def spend(c: str) -> float:
        return float(sum(o["total"] for o in orders[c]))

    def share(c: str, *kinds: str) -> float:
        return sum(events[c][k] for k in kinds) / max(sum(events[c].values()), 1)

    assert all(len(orders[c]) == 1 for c in members["new_customer"])
    assert mean("window_shopper", lambda c: len(orders[c])) < 0.2
    assert mean("champion", lambda c: len(orders[c])) > 2 * mean(
        "loyal_regular", lambda c: len(orders[c])
    )
    assert mean("champion", spend) > 3 * mean("loyal_regular", spend)
    assert mean("lapsing_high_spender", spend) > 3 * mean("bargain_hunter", spend)
    assert min(recency(c) for c in members["lapsing_high_spender"]) >= 180
    # Still-buying personas' latest orders fall where their own rhythm put them.
    assert mean("champion", recency) <= 10
    assert mean("champion", recency) < mean("loyal_regular", recency) / 2
    assert max(recency(c) for c in members["champion"]) <= 60
    assert mean("bargain_hunter", discount_share) > 0.8
    assert mean("champion", discount_share) < 0.15
    assert mean("bargain_hunter", lambda c: share(c, "search")) > 0.25
    assert mean("window_shopper", lambda c: share(c, "add_to_cart", "checkout_start")) > 0.3
    assert mean("unhappy_returner", lambda c: share(c, "return", "refund")) > 0.25
    assert mean("loyal_regular", lambda c: share(c, "store_visit")) > 0.15

    ratings: dict[str, list[int]] = defaultdict(list)
    for review in records["reviews"]:
        ratings[truth[review["customer_id"]]].append(review["rating"])
    assert sum(ratings["champion"]) / len(ratings["champion"]) >= 4.2
    assert sum(ratings["unhappy_returner"]) / len(ratings["unhappy_returner"]) <= 2.2


def test_reviews_speak_three_languages(records: Records) -> None:
    reviews = records["reviews"]
    customers = {r["customer_id"] for r in reviews}
    assert 0.2 <= len(customers) / CUSTOMERS <= 0.45
    languages = Counter(r["language"] for r in reviews)
    assert set(languages) == {"en", "sv", "ko"}
    for language in ("sv", "ko"):
        assert 0.015 <= languages[language] / len(reviews) <= 0.1
    swedish = " ".join(r["text"] for r in reviews if r["language"] == "sv")
    korean = " ".join(r["text"] for r in reviews if r["language"] == "ko")
    assert any(ch in swedish for ch in "åäö")
    assert all(("\uac00" <= ch <= "\ud7a3") or ch in " .!," for ch in korean)  # Hangul
    assert len({r["text"] for r in reviews}) > len(reviews) // 3  # varied, not one template


def test_transcripts_alternate_and_some_end_badly(records: Records) -> None:
    transcripts = records["transcripts"]
    assert 0.08 <= len({t["customer_id"] for t in transcripts}) / CUSTOMERS <= 0.25
    for transcript in transcripts:
        speakers = [turn["speaker"] for turn in transcript["turns"]]
        assert 3 <= len(speakers) <= 10
        if speakers[0] == "bot":
            speakers = speakers[1:]
        assert speakers[0] == "customer"
        assert all(s == ("customer" if i % 2 == 0 else "agent") for i, s in enumerate(speakers))
    endings = " ".join(
        t["turns"][-1]["text"] + " " + t["turns"][-2]["text"] for t in transcripts
    ).lower()
    for word in ("cancel", "refund", "manager"):
        assert word in endings
    assert "thank" in endings
    assert any(t["turns"][0]["speaker"] == "bot" for t in transcripts)
    assert {t["channel"] for t in transcripts} == {"call", "chat", "email"}


def test_contact_details_are_fake(records: Records) -> None:
    for customer in records["customers"]:
        assert customer["email"].rsplit("@", 1)[1] in ("example.com", "example.org")
        assert set(customer["attributes"]) == {"country", "birth_year", "gender"}
        assert set(customer["consent"]) == {"email", "sms"}
