"""Customer lifetime value and holdout checks, from fitted models and a customer summary."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.segment.clv.data import CustomerSummary, FloatArray
from services.segment.clv.models import BGNBD, GammaGamma

MONTHS_PER_YEAR = 12


def customer_lifetime_value(
    transactions: BGNBD,
    spend: GammaGamma,
    summary: CustomerSummary,
    *,
    horizon: float,
    discount_rate: float,
    step: float | None = None,
) -> FloatArray:
    """Expected discounted revenue per customer over the next ``horizon`` periods.

    Periods are the summary's unit (52 weeks = one year with ``unit="W"``). The horizon is
    cut into steps of one month (``step`` periods if given; the last step may be shorter).
    Each step adds: the customer's expected purchases within it (BG/NBD, conditional on
    their history) x their expected spend per purchase (Gamma-Gamma) x the discount factor
    ``(1 + discount_rate) ** -years``, ``years`` being the time from ``calibration_end``
    to the step's end. ``discount_rate`` is annual.
    """
    if horizon <= 0:
        raise ValueError("horizon must be positive")
    if discount_rate <= -1:
        raise ValueError("discount_rate must be above -1")
    step = summary.periods_per_year / MONTHS_PER_YEAR if step is None else step
    if step <= 0:
        raise ValueError("step must be positive")
    ends = np.minimum(np.arange(1, math.ceil(horizon / step) + 1) * step, horizon)
    history = (summary.frequency, summary.recency, summary.T)
    cumulative = np.stack(
        [np.zeros(len(summary))]
        + [transactions.expected_purchases(float(t), *history) for t in ends]
    )
    discount = (1.0 + discount_rate) ** (-ends / summary.periods_per_year)
    per_purchase = spend.expected_average_spend(summary.frequency, summary.monetary_value)
    return np.asarray(per_purchase * (discount @ np.diff(cumulative, axis=0)), dtype=np.float64)


@dataclass(frozen=True)
class HoldoutError:
    """Predicted against actual repeat purchases in the holdout period."""

    customers: int
    duration: float
    actual: float
    predicted: float
    # (predicted - actual) / actual over all customers together; None when actual is 0
    relative_error: float | None
    mean_absolute_error: float  # per customer
    root_mean_squared_error: float  # per customer


def holdout_error(transactions: BGNBD, summary: CustomerSummary) -> HoldoutError:
    if summary.holdout_frequency is None or summary.holdout_duration is None:
        raise ValueError("the summary has no holdout period: give it an observation_end")
    actual = summary.holdout_frequency
    predicted = transactions.expected_purchases(
        summary.holdout_duration, summary.frequency, summary.recency, summary.T
    )
    total = float(actual.sum())
    return HoldoutError(
        customers=len(summary),
        duration=summary.holdout_duration,
        actual=total,
        predicted=float(predicted.sum()),
        relative_error=float(predicted.sum() - total) / total if total else None,
        mean_absolute_error=float(np.mean(np.abs(predicted - actual))),
        root_mean_squared_error=float(np.sqrt(np.mean((predicted - actual) ** 2))),
    )
