"""Experiment statistics as a marketer reads them: daily peeking, SRM, CUPED."""

from __future__ import annotations

import numpy as np
import pytest

from services.personalize.modeling.experiments import (
    ArmTotals,
    Moments,
    cuped,
    difference,
    sample_ratio_mismatch,
    sequential_test,
)

pytestmark = pytest.mark.unit
DAYS, VISITORS_PER_DAY = 14, 1000


def peeked_daily(
    experiments: int, control_rate: float, treatment_rate: float, seed: int
) -> tuple[float, float]:
    """Share of experiments declared significant at some daily look: (mSPRT, naive z-test)."""
    rng = np.random.default_rng(seed)
    daily = rng.binomial(
        VISITORS_PER_DAY, [control_rate, treatment_rate], size=(experiments, DAYS, 2)
    )
    conversions = daily.cumsum(axis=1)
    sequential = naive = 0
    for experiment in range(experiments):
        p_value, naive_hit = 1.0, False
        for day in range(DAYS):
            n = VISITORS_PER_DAY * (day + 1)
            control, treatment = (
                ArmTotals(n, int(conversions[experiment, day, arm]), 0.0, 0.0).conversion()
                for arm in (0, 1)
            )
            p_value = sequential_test(control, treatment, previous_p_value=p_value).p_value
            naive_hit = naive_hit or difference(control, treatment).p_value < 0.05
        sequential += p_value <= 0.05
        naive += naive_hit
    return sequential / experiments, naive / experiments


def test_2000_aa_experiments_peeked_daily_keep_false_positives_under_5_percent() -> None:
    sequential, naive = peeked_daily(2000, 0.05, 0.05, seed=13)
    print(f"A/A false positives over {DAYS} daily looks: mSPRT {sequential:.2%}, naive {naive:.2%}")
    assert sequential <= 0.05
    # the same looks with a fixed-horizon test would have fooled the marketer far more often
    assert naive > 0.10


def test_a_real_lift_is_detected_with_high_power() -> None:
    power, _ = peeked_daily(300, 0.05, 0.065, seed=14)
    assert power >= 0.9


def test_the_always_valid_interval_covers_the_difference_and_narrows_with_data() -> None:
    small = sequential_test(Moments(1000, 0.05, 0.0475), Moments(1000, 0.06, 0.0564))
    large = sequential_test(Moments(20000, 0.05, 0.0475), Moments(20000, 0.06, 0.0564))
    for test in (small, large):
        assert test.ci_low < 0.01 < test.ci_high
    assert (large.ci_high - large.ci_low) < (small.ci_high - small.ci_low)
    assert large.significant
    assert not small.significant
    # once significant, always significant: the p-value never rises again
    assert sequential_test(
        Moments(1000, 0.05, 0.0475), Moments(1000, 0.05, 0.0475), previous_p_value=0.01
    ).significant


def test_difference_with_a_hand_computed_interval() -> None:
    result = difference(Moments(100, 0.1, 0.09), Moments(100, 0.2, 0.16))
    assert result.estimate == pytest.approx(0.1)
    assert result.ci_low == pytest.approx(0.1 - 1.959964 * 0.05)
    assert result.ci_high == pytest.approx(0.1 + 1.959964 * 0.05)
    assert result.p_value == pytest.approx(0.0455, abs=1e-4)


def test_arm_totals_give_the_per_exposure_moments() -> None:
    arm = ArmTotals(exposures=3, conversions=2, revenue=30.0, revenue_squares=500.0)
    assert arm.revenue_per_exposure() == Moments(3, 10.0, 100.0)
    assert arm.conversion().mean == pytest.approx(2 / 3)
    assert arm.conversion().variance == pytest.approx(np.var([1, 1, 0], ddof=1))


@pytest.mark.parametrize(
    ("exposures", "mismatch"), [([5000, 5000], False), ([5000, 4700], False), ([5000, 4600], True)]
)
def test_sample_ratio_mismatch_is_flagged_below_p_0_001(
    exposures: list[int], mismatch: bool
) -> None:
    check = sample_ratio_mismatch(exposures, [0.5, 0.5])
    assert check.mismatch is mismatch
    assert (check.p_value < 0.001) is mismatch


def test_srm_uses_the_configured_split() -> None:
    assert not sample_ratio_mismatch([9000, 1000], [0.9, 0.1]).mismatch
    assert sample_ratio_mismatch([5000, 5000], [0.9, 0.1]).mismatch


def test_cuped_with_pre_period_spend_reduces_the_variance() -> None:
    rng = np.random.default_rng(0)
    pre_spend = rng.gamma(2.0, 50.0, 20_000)
    spend = 0.8 * pre_spend + rng.normal(0, 30, 20_000)
    spend[10_000:] += 5.0  # the treatment's lift
    result = cuped(spend, pre_spend)
    assert result.theta == pytest.approx(0.8, abs=0.02)
    assert result.variance_reduction > 0.6
    plain = difference(Moments.of(spend[:10_000]), Moments.of(spend[10_000:]))
    adjusted = difference(
        Moments.of(result.adjusted[:10_000]), Moments.of(result.adjusted[10_000:])
    )
    assert adjusted.ci_high - adjusted.ci_low < 0.7 * (plain.ci_high - plain.ci_low)
    assert adjusted.ci_low < 5.0 < adjusted.ci_high
    noise = cuped(spend, rng.normal(size=20_000))
    assert abs(noise.variance_reduction) < 0.01
