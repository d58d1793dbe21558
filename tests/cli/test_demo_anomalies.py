"""The demo shop's planted anomalies: every kind, few customers, named apart from the data."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from segmenta.demo.anomalies import KINDS, TRUTH_FILE
from segmenta.demo.generate import DEFAULT_NOW, FILES, generate

pytestmark = pytest.mark.unit
CUSTOMERS = 1500


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    generate(CUSTOMERS, 5, out)
    return out


def _records(shop: Path, kind: str) -> list[dict[str, object]]:
    with (shop / f"{kind}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_every_kind_is_planted_in_a_few_distinct_customers(shop: Path) -> None:
    with (shop / TRUTH_FILE).open(encoding="utf-8") as handle:
        planted = list(csv.DictReader(handle))
    kinds = Counter(row["kind"] for row in planted)
    assert set(kinds) == set(KINDS)
    assert all(count == 6 for count in kinds.values())  # 0.4 % of 1,500 each
    customers = [row["customer_id"] for row in planted]
    assert len(set(customers)) == len(customers)  # one kind per customer
    assert len(customers) / CUSTOMERS < 0.03  # the personas stay what they were
    assert TRUTH_FILE.removesuffix(".csv") not in FILES  # never uploaded


def test_the_planted_changes_are_in_the_data(shop: Path) -> None:
    with (shop / TRUTH_FILE).open(encoding="utf-8") as handle:
        planted = defaultdict(set)
        for row in csv.DictReader(handle):
            planted[row["kind"]].add(row["customer_id"])
    now = DEFAULT_NOW.timestamp()
    events = _records(shop, "events")
    orders = _records(shop, "orders")
    per_hour: Counter[tuple[object, int]] = Counter(
        (e["customer_id"], int(_at(str(e["occurred_at"])) // 3600)) for e in events
    )
    bots = {cid for (cid, _), n in per_hour.items() if n >= 60}
    assert bots == planted["bot_burst"]
    recent = {str(o["customer_id"]) for o in orders if now - _at(str(o["placed_at"])) < 60 * 86400}
    assert not planted["spend_collapse"] & recent
    refunds = Counter(
        e["customer_id"]
        for e in events
        if e["type"] == "refund" and now - _at(str(e["occurred_at"])) < 30 * 86400
    )
    assert all(refunds[cid] >= 4 for cid in planted["refund_burst"])
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
