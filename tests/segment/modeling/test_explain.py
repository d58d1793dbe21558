"""What a segmentation says about its segments: rules, names, profiles and the map."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from services.segment.modeling import Segmenter
from services.segment.modeling.projection import project_2d
from tests.segment.modeling.population import (
    EXPECTED_NAMES,
    FEATURES,
    PERSONAS,
    FloatArray,
    IntArray,
    make_customers,
)

pytestmark = pytest.mark.unit


def test_surrogate_rules_are_faithful_and_read_in_original_units(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter, report: dict[str, Any]
) -> None:
    _data, truth = customers
    assert report["surrogate"]["fidelity"] >= 0.95
    assert json.loads(json.dumps(report)) == report
    by_persona = segments_by_persona(report, fitted, truth)
    for segment in by_persona.values():
        assert segment["rules"]["recall"] >= 0.9
        assert segment["rules"]["precision"] >= 0.9
        assert segment["rules"]["paths"]
        assert all(p["text"] for p in segment["rules"]["paths"])
    lapsing = by_persona["lapsing_high_spender"]["rules"]["paths"][0]
    recency = next(c for c in lapsing["conditions"] if c["feature"] == "recency_days")
    # Between the other personas' last orders (at most 90 days) and the lapsers' (200+),
    # rounded to a value a person reads at a glance.
    assert 90 < recency["above"] <= 200
    assert recency["above"] % 10 == 0
    assert recency["at_most"] is None
    assert f"days since last order > {recency['above']:g}" in lapsing["text"]


def segments_by_persona(
    report: dict[str, Any], fitted: Segmenter, truth: IntArray
) -> dict[str, dict[str, Any]]:
    names = list(PERSONAS)
    result = {}
    for segment in report["segments"]:
        members = truth[fitted.labels_ == segment["label"]]
        result[names[int(np.bincount(members).argmax())]] = segment
    return result


def test_names_are_unique_and_match_the_standout_features(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter, report: dict[str, Any]
) -> None:
    _, truth = customers
    by_persona = segments_by_persona(report, fitted, truth)

    assert {persona: s["name"] for persona, s in by_persona.items()} == EXPECTED_NAMES
    lapsing = by_persona["lapsing_high_spender"]
    assert "Loyal" not in lapsing["name"]
    assert lapsing["profile"]["standouts"][0] == {
        "feature": "recency_days",
        "direction": "high",
        "lift": pytest.approx(lapsing["profile"]["features"]["recency_days"]["lift"]),
    }
    assert "high days since last order" in lapsing["description"]


def test_names_stay_unique_when_a_group_is_split(
    customers: tuple[FloatArray, IntArray],
) -> None:
    data, _ = customers
    split = Segmenter(k=9, seed=0).fit(data, feature_names=FEATURES)

    names = [segment["name"] for segment in split.explain(data)["segments"]]

    assert len(names) == 9
    assert len(set(names)) == 9


def test_profiles_give_sizes_lifts_and_value_shares(
    fitted: Segmenter, report: dict[str, Any]
) -> None:
    segments = report["segments"]
    assert [s["size"] for s in segments] == fitted.metrics_["segment_sizes"]
    assert sum(s["stats"]["share"] for s in segments) == pytest.approx(1.0)
    assert sum(s["stats"]["revenue_share"] for s in segments) == pytest.approx(1.0)
    assert sum(s["stats"]["clv_share"] for s in segments) == pytest.approx(1.0)
    champions = next(s for s in segments if s["name"] == "Champions")
    monetary = champions["profile"]["features"]["monetary"]
    assert monetary["mean"] > 3 * monetary["population_mean"]
    assert monetary["lift"] > 1
    assert champions["stats"]["revenue_share"] > champions["stats"]["share"]
    assert "revenue" in champions["description"]


def test_a_negative_share_counts_against_sentiment(
    customers: tuple[FloatArray, IntArray],
) -> None:
    data, truth = customers
    names = ["review_negative_share" if name == "sentiment" else name for name in FEATURES]
    negative_share = data.copy()
    negative_share[:, FEATURES.index("sentiment")] = (1 - data[:, FEATURES.index("sentiment")]) / 2
    segmenter = Segmenter(k=6, seed=3).fit(negative_share, feature_names=names)

    report = segmenter.explain(negative_share)

    named = {s["name"] for s in segments_by_persona(report, segmenter, truth).values()}
    assert named == set(EXPECTED_NAMES.values())


def test_long_lapsed_occasional_buyers_are_not_called_loyal() -> None:
    personas = ["loyal_regular", "champion", "lapsed_one_timer", "new_customer"]
    data, truth = make_customers(1000, seed=2, personas=personas)
    segmenter = Segmenter(k=4, seed=0).fit(data, feature_names=FEATURES)

    report = segmenter.explain(data)

    names = {}
    for segment in report["segments"]:
        members = truth[segmenter.labels_ == segment["label"]]
        names[personas[int(np.bincount(members).argmax())]] = segment["name"]
    assert names["lapsed_one_timer"] == "Lapsing customers"
    assert names["loyal_regular"] == "Loyal regulars"


def test_a_rule_path_that_catches_nobody_is_left_out_of_the_rule() -> None:
    from services.segment.modeling.rules import _scored
    from shared.contracts.rules import RuleCondition, RulePath

    names = ["avg_order_value", "monetary"]
    data = np.asarray([[0.0, 0.0], [0.0, 0.0], [40.0, 80.0], [50.0, 50.0]])
    members = np.asarray([True, True, False, False])
    never = RuleCondition(feature="avg_order_value", at_most=0.0, text="has never ordered")
    ordered = RuleCondition(feature="avg_order_value", above=0.0, text="has ordered")
    no_spend = RuleCondition(feature="monetary", at_most=0.0, text="has never ordered")
    real = RulePath(text="has never ordered", conditions=(never,))
    empty = RulePath(text="has ordered and has never ordered", conditions=(ordered, no_spend))

    scored = _scored([real, empty], members, data, names, "surrogate")

    assert scored["paths"] == [real]
    assert (scored["coverage"], scored["precision"]) == (1.0, 1.0)


def test_the_map_is_a_seeded_sample_of_labelled_points(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter
) -> None:
    data, _ = customers
    first = fitted.project(data, sample_size=200)
    again = fitted.project(data, sample_size=200)

    assert first == again
    assert first["n_customers"] == len(data)
    assert first["sample_size"] == 200
    for view in (first["pca"], first["tsne"]):
        assert len(view["points"]) == 200
        assert {int(label) for _, _, label in view["points"]} <= set(range(fitted.n_segments_))
    assert len(first["pca"]["components"]) == 2
    json.dumps(first)


def test_a_map_of_customers_who_are_all_alike_is_drawn_without_tsne() -> None:
    # t-SNE's embedding of identical points is 0/0, on which sklearn's tree crashed the
    # runs worker's process (SIGSEGV) for a shop whose customers had the same features.
    same = np.ones((40, 3))
    drawn = project_2d(same, np.zeros(40, dtype=np.int64), seed=1)
    assert drawn["tsne"] is None
    assert drawn["pca"]["explained_variance_ratio"] == [0.0, 0.0]
    assert len(drawn["pca"]["points"]) == 40
    distinct = np.random.default_rng(1).normal(size=(40, 3))
    assert project_2d(distinct, np.zeros(40, dtype=np.int64), seed=1)["tsne"] is not None
