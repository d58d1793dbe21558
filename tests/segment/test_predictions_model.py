"""The propensity model's figures and choices on data whose answer is known."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from services.segment.modeling.threads import limit_threads
from services.segment.predictions import metrics
from services.segment.predictions.model import NotEnoughLabels, PropensityModel, top_reasons

pytestmark = [pytest.mark.unit]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # As the pipeline fits: OpenMP threads on a busy machine oversubscribe badly.
    with limit_threads(1):
        yield


def test_a_calibrated_forecast_has_no_calibration_error() -> None:
    # In each bin the event happens exactly as often as predicted.
    p = np.array([0.1] * 10 + [0.5] * 10 + [0.9] * 10)
    y = np.array([1] + [0] * 9 + [1] * 5 + [0] * 5 + [1] * 9 + [0])
    assert metrics.expected_calibration_error(y, p) == pytest.approx(0.0)
    curve = metrics.reliability_curve(y, p)
    assert [point["count"] for point in curve] == [10, 10, 10]
    assert [point["observed"] for point in curve] == [0.1, 0.5, 0.9]


def test_an_overconfident_forecast_is_off_by_its_gap() -> None:
    # Everyone predicted 0.9; the event happens for half: the gap is 0.4 everywhere.
    y = np.array([1, 0] * 50)
    p = np.full(100, 0.9)
    assert metrics.expected_calibration_error(y, p) == pytest.approx(0.4)
    assert metrics.calibration(y, p)["brier"] == pytest.approx(0.5 * 0.01 + 0.5 * 0.81)


def test_lift_of_a_perfect_ranking() -> None:
    y = np.array([1] * 20 + [0] * 80)
    score = np.linspace(1, 0, 100)  # the positives first
    rows = metrics.lift(y, score)
    assert rows[0]["lift"] == pytest.approx(5.0)  # 100 % of the top decile vs a 20 % base
    assert rows[1]["cumulative_gain"] == pytest.approx(1.0)
    assert rows[-1]["rate"] == 0
    assert metrics.ranking(y, score) == {"auc": 1.0, "pr_auc": 1.0}


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two informative features and three of noise; P(event) = sigmoid(2 x0 - x1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    p = 1 / (1 + np.exp(-(2 * x[:, 0] - x[:, 1])))
    return x, (rng.random(n) < p).astype(np.int64)


def test_the_model_learns_the_signal_and_beats_a_noise_baseline() -> None:
    x, y = synthetic(4_000, seed=1)
    noise = np.random.default_rng(2).random(len(y))
    model = PropensityModel(seed=3).fit(x, y, baselines={"noise": noise, "x1": -x[:, 1]})
    found = model.validation_
    assert found.metrics["auc"] > 0.8
    assert found.baselines["noise"]["auc"] < 0.6
    assert found.metrics["auc"] > found.baselines["x1"]["auc"]
    assert found.metrics["ece"] < 0.05
    assert found.metrics["calibration"] in {"none", "isotonic", "sigmoid"}
    # The kept calibration is the one with the lowest Brier score on validation.
    candidates = found.metrics["calibration_candidates"]
    assert found.metrics["brier"] == min(c["brier"] for c in candidates.values())
    assert sum(found.sizes.values()) == len(y)
    fresh_x, fresh_y = synthetic(2_000, seed=9)
    assert metrics.ranking(fresh_y, model.predict_proba(fresh_x))["auc"] > 0.8


def test_reasons_name_the_feature_that_pushed_the_score() -> None:
    x, y = synthetic(3_000, seed=4)
    model = PropensityModel(seed=3).fit(x, y)
    customer = np.array([[3.0, 0.0, 0.0, 0.0, 0.0]])  # high only in the first feature
    reasons = top_reasons(model, customer, reference=np.median(x, axis=0))
    names = ["x0", "x1", "n2", "n3", "n4"]
    found = reasons.of(0, names)
    assert found[0]["feature"] == "x0"
    assert found[0]["value"] == 3.0
    assert found[0]["push"] > 0.2
    assert all(abs(reason["push"]) < abs(found[0]["push"]) for reason in found[1:])
    low = top_reasons(model, np.array([[-3.0, 0, 0, 0, 0]]), reference=np.median(x, axis=0))
    assert low.of(0, names)[0] == {"feature": "x0", "value": -3.0, "push": low.pushes[0, 0]}
    assert low.pushes[0, 0] < -0.2  # it lowers this customer's probability


def test_one_outcome_only_is_refused() -> None:
    x, _ = synthetic(500, seed=5)
    with pytest.raises(NotEnoughLabels, match="at least 10 of each outcome"):
        PropensityModel().fit(x, np.zeros(500, dtype=np.int64))


def test_a_model_that_ranks_worse_than_a_baseline_serves_the_baseline_calibrated() -> None:
    # The features are noise; the signal is only in the baseline score.
    rng = np.random.default_rng(6)
    n = 4_000
    x = rng.normal(size=(n, 4))
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(np.int64)
    model = PropensityModel(seed=3).fit(x, y, baselines={"signal": signal})
    found = model.validation_.metrics
    assert found["served"] == "signal"
    assert found["boosted_auc"] < model.validation_.baselines["signal"]["auc"]
    assert "signal" in found["served_because"]
    assert str(found["boosted_auc"]) in found["served_because"]
    assert found["auc"] > 0.75  # the figures are the served score's
    assert found["calibration"] in {"isotonic", "sigmoid"}
    # Served on fresh customers: ranked by the baseline, calibrated, and it needs its scores.
    fresh = rng.normal(size=2_000)
    fresh_y = (rng.random(2_000) < 1 / (1 + np.exp(-2 * fresh))).astype(np.int64)
    p = model.predict_proba(rng.normal(size=(2_000, 4)), {"signal": fresh})
    assert metrics.ranking(fresh_y, p)["auc"] > 0.75
    assert metrics.expected_calibration_error(fresh_y, p) < 0.05
    with pytest.raises(ValueError, match="serves the baseline signal"):
        model.predict_proba(x)


def test_a_model_that_ranks_better_keeps_serving_itself() -> None:
    x, y = synthetic(4_000, seed=1)
    model = PropensityModel(seed=3).fit(x, y, baselines={"x1": -x[:, 1]})
    found = model.validation_.metrics
    assert found["served"] == "model"
    assert found["boosted_auc"] >= model.validation_.baselines["x1"]["auc"]
    assert "not below" in found["served_because"]


def test_stacked_cut_offs_validate_and_calibrate_on_the_latest() -> None:
    # Three older windows with an event rate far above the latest window's (same signal).
    rng = np.random.default_rng(8)
    blocks, labels, groups = [], [], []
    for k, shift in enumerate([-1.5, 1.5, 1.5, 1.5]):
        x = rng.normal(size=(2_000, 3))
        p = 1 / (1 + np.exp(-(2 * x[:, 0] + shift)))
        blocks.append(x)
        labels.append((rng.random(2_000) < p).astype(np.int64))
        groups.append(np.full(2_000, k))
    # The same 2,000 customers at every cut-off: the 800 held out of the latest one for
    # calibration and validation are not learnt from at any cut-off.
    customers = np.tile(np.arange(2_000), 4)
    model = PropensityModel(seed=3).fit(
        np.vstack(blocks),
        np.concatenate(labels),
        groups=np.concatenate(groups),
        customers=customers,
    )
    assert model.validation_.metrics["split"] == "time"
    sizes = model.validation_.sizes
    assert sizes == {"train": 4 * 1_200, "calibration": 400, "validation": 400}
    assert model.validation_.metrics["base_rate"] == pytest.approx(labels[0].mean(), abs=0.03)
    # Scored customers like the latest window's get its rate, not the older windows'.
    fresh = rng.normal(size=(3_000, 3))
    fresh_y = rng.random(3_000) < 1 / (1 + np.exp(-(2 * fresh[:, 0] - 1.5)))
    p = model.predict_proba(fresh)
    assert p.mean() == pytest.approx(fresh_y.mean(), abs=0.03)
    assert labels[1].mean() - fresh_y.mean() > 0.3
    # Without groups the same rows are cut at random, the older rates mixed in.
    mixed = PropensityModel(seed=3).fit(np.vstack(blocks), np.concatenate(labels))
    assert mixed.validation_.metrics["split"] == "random"
    assert mixed.predict_proba(fresh).mean() - fresh_y.mean() > 0.15
