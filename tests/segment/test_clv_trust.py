"""CLV where the model can be believed, and no number where it cannot: scoring on the real
database withholds a value from one-order customers with too short a history, segment
means leave them out, and the time-split check compares predictions with what happened."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text

from bench.clv_split import NAMES, load
from segmenta.demo.generate import DEFAULT_NOW, generate
from services.segment.features import FeatureMatrix, get_feature_set
from services.segment.modeling.explain import explain_segments
from services.segment.scoring.clv_scores import clv_for_segments, score_customers
from services.segment.scoring.clv_validation import time_split
from shared.db import session_scope
from shared.models.tenancy import Tenant
from tests.segment.builders import create_customer

NAMES_V1 = get_feature_set("v1").names
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def history_matrix(pks: list[int], rows: list[tuple[float, float, float, float]]) -> FeatureMatrix:
    """Vectors whose purchase history is ``rows`` of (purchase days, first order age,
    last order age, mean repeat-day spend); every other feature 0."""
    values = np.zeros((len(pks), len(NAMES_V1)))
    columns = [
        NAMES_V1.index(n)
        for n in (
            "purchase_days",
            "first_purchase_age_days",
            "last_purchase_age_days",
            "repeat_day_spend",
        )
    ]
    values[:, columns] = np.asarray(rows)
    return FeatureMatrix(
        "v1", list(NAMES_V1), np.asarray(pks, dtype=np.int64), values, AS_OF, AS_OF
    )


@pytest.mark.integration
def test_one_order_customers_with_short_history_get_no_clv(engine: Engine) -> None:
    rng = np.random.default_rng(3)
    rows: list[tuple[float, float, float, float]] = []
    kinds: list[str] = []
    for _ in range(60):  # repeat buyers
        first = float(rng.uniform(200, 700))
        rows.append((float(rng.integers(3, 9)), first, float(rng.uniform(2, 120)), 80.0))
        kinds.append("repeat")
    for _ in range(15):  # one order, long ago: the model has seen them stay away
        rows.append((1.0, float(rng.uniform(300, 600)), 0.0, 0.0))
        kinds.append("old single")
    for _ in range(15):  # one order, recent: nothing of their own to go on
        first = float(rng.uniform(5, 60))
        rows.append((1.0, first, first, 0.0))
        kinds.append("new single")
    # The last-order age of a one-order customer is their first order's age.
    rows = [(d, f, f if d == 1 else last, s) for d, f, last, s in rows]
    with session_scope(engine) as session:
        tenant = Tenant(name=f"clv-{uuid.uuid4().hex[:8]}")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        pks = [create_customer(session, tenant_id=tenant.id).id for _ in rows]
    matrix = history_matrix([int(pk) for pk in pks if pk is not None], rows)
    with session_scope(engine) as session:
        outcome = score_customers(
            session,
            tenant_id=tenant.id,
            matrix=matrix,
            as_of=AS_OF,
            horizon_days=365,
            discount_rate=0.1,
            min_history_days=180,
        )
    with engine.connect() as conn:
        stored: dict[int, float | None] = dict(
            conn.execute(  # type: ignore[arg-type]
                text("SELECT customer_pk, clv FROM customer_score WHERE tenant_id = :t"),
                {"t": tenant.id},
            ).all()
        )
    by_kind: defaultdict[str, list[float | None]] = defaultdict(list)
    for pk, kind in zip(matrix.customer_pks.tolist(), kinds, strict=True):
        by_kind[kind].append(stored[pk])
    assert all(value is None for value in by_kind["new single"])
    assert all(value is not None and value >= 0 for value in by_kind["old single"])
    assert all(value is not None and value > 0 for value in by_kind["repeat"])
    assert any("withheld" in note for note in outcome.params["notes"])
    # Segment figures leave the withheld values out instead of counting them as 0.
    values = clv_for_segments(matrix, outcome)
    labels = np.asarray([{"repeat": 0, "old single": 1, "new single": 2}[k] for k in kinds])
    data = matrix.values[:, [NAMES_V1.index("purchase_days")]]
    report = explain_segments(data, data, labels, ["purchase_days"], clv=values)
    stats = {s["label"]: s["stats"] for s in report["segments"]}
    repeat = np.asarray([v for v in by_kind["repeat"] if v is not None])
    assert stats[0]["mean_clv"] == pytest.approx(repeat.mean(), rel=1e-6)
    assert stats[2]["mean_clv"] is None
    assert stats[2]["clv_withheld_share"] == 1.0
    assert "too little history" in stats[2]["clv_note"]


@pytest.mark.unit
def test_the_time_split_compares_predictions_with_the_holdout_revenue(tmp_path: Path) -> None:
    generate(400, 5, tmp_path)
    ids, days, totals, groups = load(tmp_path)
    cut = (DEFAULT_NOW - timedelta(days=120)).date()
    split = time_split(
        ids,
        days,
        totals,
        groups,
        calibration_end=cut,
        observation_end=DEFAULT_NOW.date(),
        min_history_days=180,
    )
    # What happened, counted directly from the orders, for the customers known by the cut.
    known = {cid for cid, day in zip(ids, days, strict=True) if date.fromisoformat(day) <= cut}
    spent: defaultdict[str, float] = defaultdict(float)
    first: dict[str, date] = {}
    order_days: defaultdict[str, set[date]] = defaultdict(set)
    for cid, day, total in zip(ids, days, totals, strict=True):
        placed = date.fromisoformat(day)
        first[cid] = min(first.get(cid, placed), placed)
        if placed <= cut:
            order_days[cid].add(placed)
        if cid in known and placed > cut:
            spent[groups[cid]] += total
    checks = {check.group: check for check in split.groups}
    assert checks["all"].customers == len(known)
    members: defaultdict[str, int] = defaultdict(int)
    for cid in known:
        members[groups[cid]] += 1
    for name, size in members.items():
        assert checks[name].customers == size
        assert checks[name].actual * size == pytest.approx(spent[name])
        assert checks[name].predicted >= 0
    # The untrusted: one order day by the cut, the first under 180 days before it.
    young_singles = {
        cid for cid in known if (cut - first[cid]).days < 180 and len(order_days[cid]) == 1
    }
    assert checks["untrusted customers"].customers == len(young_singles) > 0
    assert (
        checks["trusted customers"].customers + checks["untrusted customers"].customers
        == checks["all"].customers
    )
    assert set(NAMES.values()) >= set(members)
