"""Off-policy evaluation against hand-computed values and a simulator with a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from services.personalize.modeling.ope import (
    DecisionLog,
    LowEffectiveSampleSizeError,
    OpeReport,
    evaluate,
)

pytestmark = pytest.mark.unit

# Logging shows a w.p. 0.8 and b w.p. 0.2; the target is uniform. Weights 0.625 and 2.5.
TINY = DecisionLog.from_arrays(
    ["a", "b", "a", "b"], [1, 0, 0, 1], [0.8, 0.2, 0.8, 0.2], [0.5, 0.5, 0.5, 0.5]
)


def test_ips_and_snips_on_a_four_row_log() -> None:
    report = evaluate(TINY, n_bootstrap=200)
    assert report.ips.estimate == pytest.approx((0.625 + 2.5) / 4)  # 0.78125
    assert report.snips.estimate == pytest.approx(3.125 / 6.25)  # 0.5
    assert report.ess == pytest.approx(6.25**2 / (2 * 0.625**2 + 2 * 2.5**2))  # 2.94
    assert report.rows == 4
    for estimate in (report.ips, report.snips):
        assert estimate.ci_low <= estimate.estimate <= estimate.ci_high


def test_doubly_robust_with_the_fitted_per_action_means() -> None:
    # both actions' mean reward is 0.5, so q = 0.5 and the corrections cancel:
    # 0.625 * 0.5 - 2.5 * 0.5 - 0.625 * 0.5 + 2.5 * 0.5 = 0
    report = evaluate(TINY, n_bootstrap=200)
    assert report.dr is not None
    assert report.dr.estimate == pytest.approx(0.5)


def test_doubly_robust_with_given_reward_predictions() -> None:
    q = np.tile([0.2, 0.6], (4, 1))
    report = evaluate(TINY, reward_predictions=q, n_bootstrap=200)
    # direct 0.5 * 0.2 + 0.5 * 0.6 = 0.4; corrections 0.5 - 1.5 - 0.125 + 1.0 = -0.125
    assert report.dr is not None
    assert report.dr.estimate == pytest.approx(0.4 - 0.125 / 4)


class World:
    """Two customer types, four offers, known conversion rates and policies."""

    reward = np.array([[0.10, 0.30, 0.05, 0.20], [0.40, 0.05, 0.25, 0.10]])
    logging = np.array([[0.55, 0.25, 0.15, 0.05], [0.10, 0.50, 0.10, 0.30]])

    def simulate(self, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        kind = rng.integers(0, 2, rows)
        uniforms = rng.random(rows)[:, None]
        action = (uniforms > np.cumsum(self.logging[kind], axis=1)).sum(axis=1)
        return kind, action, rng.binomial(1, self.reward[kind, action]).astype(float)

    def truth(self, target: np.ndarray) -> float:
        return float(np.mean(np.sum(target * self.reward, axis=1)))


UNIFORM = np.full((2, 4), 0.25)
SMARTER = np.array([[0.1, 0.7, 0.1, 0.1], [0.7, 0.1, 0.1, 0.1]])


def run(world: World, target: np.ndarray, seed: int, *, true_model: bool = False) -> OpeReport:
    kind, action, reward = world.simulate(4000, seed)
    log = DecisionLog.from_arrays(action, reward, world.logging[kind, action], target[kind, action])
    return evaluate(
        log,
        target_policy=target[kind],
        context=kind[:, None].astype(float),
        reward_predictions=world.reward[kind] if true_model else None,
        n_bootstrap=250,
        seed=seed,
    )


@pytest.mark.parametrize(("name", "target"), [("uniform", UNIFORM), ("smarter", SMARTER)])
def test_95_percent_intervals_cover_the_true_value_in_most_of_200_logs(
    name: str, target: np.ndarray
) -> None:
    world = World()
    truth = world.truth(target)
    covered = {"ips": 0, "snips": 0, "dr": 0}
    for seed in range(200):
        report = run(world, target, seed)
        for key in covered:
            estimate = getattr(report, key)
            covered[key] += estimate.ci_low <= truth <= estimate.ci_high
    print(name, {key: count / 200 for key, count in covered.items()})
    assert all(count >= 180 for count in covered.values()), covered


def test_doubly_robust_varies_less_than_ips_when_its_reward_model_is_right() -> None:
    world = World()
    reports = [run(world, SMARTER, seed, true_model=True) for seed in range(200)]
    ips = np.array([r.ips.estimate for r in reports])
    dr = np.array([r.dr.estimate for r in reports if r.dr is not None])
    assert np.var(dr) < np.var(ips)
    assert abs(dr.mean() - world.truth(SMARTER)) < 0.005


def test_a_target_the_log_barely_covers_is_flagged_or_refused() -> None:
    # logging almost never shows b; the target always does
    rows = 1000
    action = np.where(np.arange(rows) < 5, "b", "a")
    log = DecisionLog.from_arrays(
        action,
        np.ones(rows),
        np.where(action == "b", 0.005, 0.995),
        np.where(action == "b", 1.0, 0.0),
    )
    report = evaluate(log, n_bootstrap=200)
    assert report.ess < 50
    assert report.warning is not None
    assert "effective sample size" in report.warning
    assert "warning" in report.to_dict()
    with pytest.raises(LowEffectiveSampleSizeError):
        evaluate(log, refuse_low_ess=True)


def test_a_context_dependent_target_without_its_full_distribution_gets_no_dr() -> None:
    log = DecisionLog.from_arrays(
        ["a", "a", "b", "b"], [1, 0, 1, 0], [0.5] * 4, [0.9, 0.1, 0.5, 0.5]
    )
    report = evaluate(log, n_bootstrap=200)
    assert report.dr is None
    assert report.warning is not None
    assert "target_policy" in report.warning


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("logging_propensity", {"logging_propensity": [0.0, 0.5]}),
        ("target_probability", {"target_probability": [1.5, 0.5]}),
        ("reward", {"reward": [float("nan"), 1.0]}),
    ],
)
def test_invalid_values_are_refused_naming_the_column(
    column: str, values: dict[str, list[float]]
) -> None:
    arrays = {
        "reward": [1.0, 0.0],
        "logging_propensity": [0.5, 0.5],
        "target_probability": [0.5, 0.5],
    }
    with pytest.raises(ValueError, match=column):
        DecisionLog.from_arrays(["a", "b"], **(arrays | values))
