"""BG/NBD and Gamma-Gamma estimators, fitted by maximum likelihood.

* BG/NBD (Fader, Hardie & Lee, 2005, "Counting your customers the easy way"): while alive
  a customer buys at Poisson rate lambda ~ Gamma(r, alpha) and, after each purchase, drops
  out with probability p ~ Beta(a, b).
* Gamma-Gamma (Fader, Hardie & Lee, 2005, "RFM and CLV"): the value of each repeat purchase
  is Gamma(p, nu) around the customer's own mean, with nu ~ Gamma(q, gamma) across
  customers; fitted on the customers with repeat purchases.

Both maximise the log-likelihood over log-parameters (so parameters stay positive) with
Nelder-Mead; the likelihoods are written with gammaln/betaln/logaddexp so that large
purchase counts neither overflow nor lose precision.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize  # type: ignore[import-untyped]
from scipy.special import betaln, expit, gammaln, hyp2f1  # type: ignore[import-untyped]
from sklearn.base import BaseEstimator  # type: ignore[import-untyped]
from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped]
from sklearn.utils.validation import check_is_fitted  # type: ignore[import-untyped]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float


class BGNBD(BaseEstimator):  # type: ignore[misc]
    """Purchase frequency and P(alive) from each customer's history: ``frequency`` (repeat
    purchases), ``recency`` (time from the first to the last purchase) and ``T`` (time from
    the first purchase to the end of the period), all times in one unit of your choice.

    ``penalizer`` adds ``penalizer * sum(params ** 2)`` to the negative log-likelihood per
    customer; a little (0.001-0.1) keeps fits on small or odd data sets from running off.
    """

    def __init__(self, penalizer: float = 0.0, max_iter: int = 10_000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    def fit(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Self:  # noqa: N803
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        if x.size == 0:
            raise ValueError("no customers to fit")
        # Customers with the same history share a likelihood term: fit on the distinct ones.
        histories, counts = np.unique(np.column_stack([x, t_x, t_cal]), axis=0, return_counts=True)
        distinct = histories.T

        def log_likelihood(params: FloatArray) -> float:
            return float(counts @ _bgnbd_log_likelihood(params, *distinct))

        params, converged = _maximise_likelihood(
            log_likelihood, 4, x.size, self.penalizer, self.max_iter
        )
        self.params_ = BGNBDParams(*map(float, params))
        self.log_likelihood_ = log_likelihood(params)
        self.n_customers_ = int(x.size)
        self.converged_ = converged
        return self

    def probability_alive(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,  # noqa: N803
    ) -> FloatArray:
        check_is_fitted(self)
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        return _p_alive(self.params_, x, t_x, t_cal)

    def expected_purchases(
        self,
        t: float,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Expected purchases in the next ``t`` periods, given each customer's history.

        Equation (10) of the BG/NBD paper, with the hypergeometric function put through
        Euler's transformation: its terms then stay bounded for customers with many
        purchases, where the textbook form overflows. With frequency = recency = T = 0 it
        is the unconditional E[X(t)] of a customer acquired at time 0.
        """
        check_is_fitted(self)
        if t < 0:
            raise ValueError("t must be non-negative")
        x, t_x, t_cal = check_rfm(frequency, recency, T)
        r, alpha, a, b = astuple(self.params_)
        z = t / (alpha + t_cal + t)
        growth = 1.0 - (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        expected = (a + b + x - 1.0) / (a - 1.0) * growth * _p_alive(self.params_, x, t_x, t_cal)
        return np.asarray(expected, dtype=np.float64)


class GammaGamma(BaseEstimator):  # type: ignore[misc]
    """Expected spend per purchase from (frequency, mean repeat purchase value); the model
    assumes spend per purchase is independent of how often a customer buys.
    ``penalizer`` as for `BGNBD`."""

    def __init__(self, penalizer: float = 0.0, max_iter: int = 10_000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    def fit(self, frequency: ArrayLike, monetary_value: ArrayLike) -> Self:
        """Fit on the customers with at least one repeat purchase; the others are skipped."""
        x, m = check_spend(frequency, monetary_value)
        repeat = x > 0
        if np.count_nonzero(repeat) < 2:
            raise ValueError("Gamma-Gamma needs at least two customers with repeat purchases")
        x, m = x[repeat], m[repeat]

        def log_likelihood(params: FloatArray) -> float:
            return float(_gamma_gamma_log_likelihood(params, x, m).sum())

        params, converged = _maximise_likelihood(
            log_likelihood, 3, x.size, self.penalizer, self.max_iter
        )
        self.params_ = GammaGammaParams(*map(float, params))
        self.log_likelihood_ = log_likelihood(params)
        self.n_customers_ = int(x.size)
        self.converged_ = converged
        return self

    def expected_average_spend(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        """E[spend per purchase | history]: the population mean, shrunk towards each
        customer's own mean as their repeat purchases accumulate (the population mean for
        customers without one)."""
        check_is_fitted(self)
        x, m = check_spend(frequency, monetary_value)
        p, q, gamma = self.params_.p, self.params_.q, self.params_.gamma
        if q <= 1.0:
            raise ValueError(f"q = {q:.3g} <= 1: the model's mean spend is unbounded")
        return np.asarray((gamma + x * m) * p / (p * x + q - 1.0), dtype=np.float64)


def check_rfm(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,  # noqa: N803
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x, t_x, t_cal = _column("frequency", frequency), _column("recency", recency), _column("T", T)
    if not x.shape == t_x.shape == t_cal.shape:
        raise ValueError("frequency, recency and T must have the same length")
    _check_counts(x)
    if np.any(t_x < 0):
        raise ValueError("recency must be non-negative")
    if np.any(t_x > t_cal):
        raise ValueError("recency cannot exceed T: the last purchase is after the period's end")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 for customers without repeat purchases")
    return x, t_x, t_cal


def check_spend(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x, m = _column("frequency", frequency), _column("monetary_value", monetary_value)
    if x.shape != m.shape:
        raise ValueError("frequency and monetary_value must have the same length")
    _check_counts(x)
    if np.any((x > 0) & (m <= 0)):
        raise ValueError("monetary_value must be positive for customers with repeat purchases")
    return x, m


def _column(name: str, values: ArrayLike) -> FloatArray:
    array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if array.ndim != 1:
        raise ValueError(f"{name} must be a number or a one-dimensional array")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


def _check_counts(x: FloatArray) -> None:
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative whole number of repeat purchases")


def _p_alive(params: BGNBDParams, x: FloatArray, t_x: FloatArray, t_cal: FloatArray) -> FloatArray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    x_safe = np.where(repeat, x, 1.0)
    # log of a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x): the odds of having
    # dropped out right after the last purchase; customers without repeats cannot have.
    log_odds = (
        np.log(a)
        - np.log(b + x_safe - 1.0)
        + (r + x) * (np.log(alpha + t_cal) - np.log(alpha + t_x))
    )
    return np.asarray(np.where(repeat, expit(-log_odds), 1.0), dtype=np.float64)


def _bgnbd_log_likelihood(
    params: FloatArray, x: FloatArray, t_x: FloatArray, t_cal: FloatArray
) -> FloatArray:
    r, alpha, a, b = params
    repeat = x > 0
    x_safe = np.where(repeat, x, 1.0)
    shared = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive = betaln(a, b + x) - (r + x) * np.log(alpha + t_cal)
    dropped = betaln(a + 1.0, b + x_safe - 1.0) - (r + x) * np.log(alpha + t_x)
    return np.asarray(shared + np.logaddexp(alive, np.where(repeat, dropped, -np.inf)))


def _gamma_gamma_log_likelihood(params: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    p, q, gamma = params
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * m)
    )


def _maximise_likelihood(
    log_likelihood: Callable[[FloatArray], float],
    n_params: int,
    n_customers: int,
    penalizer: float,
    max_iter: int,
) -> tuple[FloatArray, bool]:
    """Maximise the log-likelihood per customer (minus an optional L2 penalty on the
    parameters) over log-parameters; returns the parameters and whether it converged."""
    if penalizer < 0:
        raise ValueError("penalizer must be non-negative")

    def objective(log_params: FloatArray) -> float:
        params = np.exp(log_params)
        with np.errstate(all="ignore"):
            value = -log_likelihood(params) / n_customers + penalizer * float(params @ params)
        return value if np.isfinite(value) else np.inf

    result: Any = minimize(
        objective,
        np.zeros(n_params),
        method="Nelder-Mead",
        options={"maxiter": max_iter, "maxfev": 2 * max_iter, "xatol": 1e-8, "fatol": 1e-12},
    )
    if not result.success:
        warnings.warn(f"maximum likelihood fit: {result.message}", ConvergenceWarning, stacklevel=3)
    return np.exp(result.x), bool(result.success)
