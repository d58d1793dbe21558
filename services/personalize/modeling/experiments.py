"""Experiment statistics: differences with intervals, an always-valid sequential test, a
sample-ratio-mismatch check and CUPED.

Marketers look at a running experiment every day. A fixed-horizon test read daily and
stopped at the first "significant" look has a false-positive rate far above its alpha;
the mixture sequential probability ratio test (mSPRT, Johari, Pekelis and Walsh 2017)
does not: its p-value is always valid, so stopping at any look keeps the error at alpha.
For a difference ``delta`` estimated with variance ``V`` and a normal mixing distribution
``N(0, tau^2)`` over the true difference, the likelihood ratio against "no difference" is

    L = sqrt(V / (V + tau^2)) * exp(tau^2 delta^2 / (2 V (V + tau^2)))

and the always-valid p-value is the running minimum of ``1 / L``. ``tau`` is set as
``mixing_sd`` standard deviations of the metric per unit: the effect size the test is
most sensitive to (0.1 suits conversion lifts of a few points).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import chdtrc, ndtr, ndtri  # type: ignore[import-untyped]

FloatArray = NDArray[np.float64]
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class Moments:
    """A metric's per-unit count, mean and sample variance in one arm."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: ArrayLike) -> Moments:
        array = np.asarray(values, dtype=np.float64)
        return cls(len(array), float(array.mean()), float(array.var(ddof=1)))


@dataclass(frozen=True)
class ArmTotals:
    """What the report shows per arm, kept as sums so that looks can be accumulated."""

    exposures: int
    conversions: int
    revenue: float
    revenue_squares: float

    def conversion(self) -> Moments:
        p = self.conversions / self.exposures
        return Moments(
            self.exposures, p, p * (1.0 - p) * self.exposures / max(self.exposures - 1, 1)
        )

    def revenue_per_exposure(self) -> Moments:
        n = self.exposures
        mean = self.revenue / n
        return Moments(n, mean, max(self.revenue_squares - n * mean**2, 0.0) / max(n - 1, 1))


@dataclass(frozen=True)
class Difference:
    """Treatment minus control, with a normal (Welch) interval and two-sided p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class SequentialTest:
    likelihood_ratio: float
    p_value: float
    """Always valid: the running minimum over looks (pass the previous look's)."""
    significant: bool
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class SampleRatioCheck:
    chi2: float
    p_value: float
    mismatch: bool


@dataclass(frozen=True)
class Cuped:
    adjusted: FloatArray
    theta: float
    variance_reduction: float
    """``1 - var(adjusted) / var(metric)``: the share of variance the covariate explains."""


def _delta_variance(control: Moments, treatment: Moments) -> tuple[float, float]:
    delta = treatment.mean - control.mean
    return delta, treatment.variance / treatment.n + control.variance / control.n


def difference(control: Moments, treatment: Moments, *, confidence: float = 0.95) -> Difference:
    delta, variance = _delta_variance(control, treatment)
    se = float(np.sqrt(variance))
    z = float(ndtri(0.5 + confidence / 2.0))
    p = float(2.0 * ndtr(-abs(delta) / se)) if se > 0 else float(delta == 0)
    return Difference(delta, delta - z * se, delta + z * se, p)


def msprt_likelihood_ratio(delta: ArrayLike, variance: ArrayLike, tau: ArrayLike) -> FloatArray:
    """Vectorised mSPRT likelihood ratio (any broadcastable shapes)."""
    d, v, t2 = np.asarray(delta), np.asarray(variance), np.asarray(tau) ** 2
    exponent = t2 * d**2 / (2.0 * v * (v + t2))
    return np.asarray(np.sqrt(v / (v + t2)) * np.exp(np.minimum(exponent, 700.0)))


def always_valid_p_values(delta: ArrayLike, variance: ArrayLike, tau: ArrayLike) -> FloatArray:
    """Always-valid p-values along the last axis (the looks, in order)."""
    ratio = msprt_likelihood_ratio(delta, variance, tau)
    return np.minimum.accumulate(np.minimum(1.0, 1.0 / ratio), axis=-1)


def sequential_test(
    control: Moments,
    treatment: Moments,
    *,
    alpha: float = 0.05,
    mixing_sd: float = 0.1,
    previous_p_value: float = 1.0,
) -> SequentialTest:
    delta, variance = _delta_variance(control, treatment)
    pooled_sd = np.sqrt((control.variance + treatment.variance) / 2.0)
    tau2 = float((mixing_sd * pooled_sd) ** 2)
    if variance <= 0 or tau2 <= 0:
        return SequentialTest(1.0, previous_p_value, previous_p_value <= alpha, -np.inf, np.inf)
    ratio = float(msprt_likelihood_ratio(delta, variance, np.sqrt(tau2)))
    p_value = min(previous_p_value, 1.0, 1.0 / ratio)
    width = np.sqrt(
        variance
        * (variance + tau2)
        / tau2
        * (np.log((variance + tau2) / variance) - 2 * np.log(alpha))
    )
    return SequentialTest(ratio, p_value, p_value <= alpha, delta - width, delta + width)


def sample_ratio_mismatch(
    exposures: Sequence[int], split: Sequence[float], *, threshold: float = SRM_THRESHOLD
) -> SampleRatioCheck:
    """Chi-square of the arms' exposures against the configured split; a p-value under
    ``threshold`` means assignment or logging is broken and the results are not to be read."""
    observed = np.asarray(exposures, dtype=np.float64)
    shares = np.asarray(split, dtype=np.float64)
    if observed.shape != shares.shape or observed.sum() <= 0:
        raise ValueError("exposures and split need one value per arm and some exposures")
    expected = shares / shares.sum() * observed.sum()
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    p = float(chdtrc(len(observed) - 1, chi2))
    return SampleRatioCheck(float(chi2), float(p), bool(p < threshold))


def cuped(metric: ArrayLike, covariate: ArrayLike) -> Cuped:
    """``metric - theta (covariate - mean covariate)`` with ``theta = cov / var``; compute it
    over all arms pooled (the covariate is pre-period, so untouched by the treatment)."""
    y = np.asarray(metric, dtype=np.float64)
    x = np.asarray(covariate, dtype=np.float64)
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError("metric and covariate need one value per unit")
    var_x = float(x.var(ddof=1))
    theta = float(np.cov(x, y)[0, 1] / var_x) if var_x > 0 else 0.0
    adjusted = y - theta * (x - x.mean())
    var_y = float(y.var(ddof=1))
    reduction = 1.0 - float(adjusted.var(ddof=1)) / var_y if var_y > 0 else 0.0
    return Cuped(adjusted, theta, reduction)
