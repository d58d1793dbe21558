"""CLV checked against what happened: fit on the orders up to a cut-off, predict the
revenue of the period after it, and compare per group (segment) with the real revenue.

The models are fitted exactly as the training fits them (`clv_scores.fit_models`). A
group's predicted revenue is the sum over its customers of expected purchases in the
holdout (BG/NBD, given their history) x expected spend per purchase (Gamma-Gamma);
undiscounted, because the actual revenue is not discounted either. Customers whose
first order comes after the cut-off are not in the cohort (nothing was predicted for
them). The same check tells where the model should not be believed: see `trust`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from services.segment.clv import summarize_transactions
from services.segment.scoring.clv_scores import fit_models
from services.segment.scoring.clv_trust import untrusted


@dataclass(frozen=True)
class GroupCheck:
    group: str
    customers: int
    predicted: float  # mean revenue per customer in the holdout, as predicted
    actual: float  # mean revenue per customer in the holdout, as it happened
    untrusted: int  # customers whose CLV is withheld (too little history)

    @property
    def ratio(self) -> float | None:
        """Predicted / actual revenue; None when the group bought nothing."""
        return self.predicted / self.actual if self.actual else None


@dataclass(frozen=True)
class TimeSplit:
    calibration_end: date
    observation_end: date
    groups: list[GroupCheck]  # per group, largest first, then "trusted" and "all"


def _group_check(
    name: str, rows: np.ndarray, predicted: np.ndarray, actual: np.ndarray, withheld: np.ndarray
) -> GroupCheck:
    count = int(rows.sum())
    return GroupCheck(
        group=name,
        customers=count,
        predicted=float(predicted[rows].mean()) if count else 0.0,
        actual=float(actual[rows].mean()) if count else 0.0,
        untrusted=int(withheld[rows].sum()),
    )


def time_split(
    customer_ids: Sequence[Any],
    purchased_at: ArrayLike,
    amounts: ArrayLike,
    groups: Mapping[Any, str],
    *,
    calibration_end: date,
    observation_end: date,
    min_history_days: float,
) -> TimeSplit:
    """Predicted against actual holdout revenue per group of ``groups`` (customer id ->
    group name), for the customers who had ordered by ``calibration_end``."""
    summary = summarize_transactions(
        customer_ids,
        purchased_at,
        amounts,
        calibration_end=calibration_end,
        observation_end=observation_end,
        unit="D",
    )
    assert summary.holdout_duration is not None
    transactions, spend, _ = fit_models(summary, np.arange(len(summary)))
    history = (summary.frequency, summary.recency, summary.T)
    purchases = transactions.expected_purchases(summary.holdout_duration, *history)
    per_purchase = spend.expected_average_spend(summary.frequency, summary.monetary_value)
    predicted = np.asarray(purchases * per_purchase, dtype=np.float64)
    actual = _holdout_revenue(
        summary.customer_ids, customer_ids, purchased_at, amounts, calibration_end, observation_end
    )
    withheld = untrusted(summary.frequency, summary.T, min_history_days=min_history_days)
    names = np.asarray([groups.get(cid, "") for cid in summary.customer_ids.tolist()])
    checks = [
        _group_check(str(name), names == name, predicted, actual, withheld)
        for name in sorted(set(names.tolist()), key=lambda n: -int((names == n).sum()))
    ]
    everyone = np.ones(len(summary), dtype=bool)
    checks.append(_group_check("trusted customers", ~withheld, predicted, actual, withheld))
    checks.append(_group_check("untrusted customers", withheld, predicted, actual, withheld))
    checks.append(_group_check("all", everyone, predicted, actual, withheld))
    return TimeSplit(calibration_end, observation_end, checks)


def _holdout_revenue(
    cohort: np.ndarray,
    customer_ids: Sequence[Any],
    purchased_at: ArrayLike,
    amounts: ArrayLike,
    calibration_end: date,
    observation_end: date,
) -> np.ndarray:
    """Each cohort customer's revenue in (calibration_end, observation_end]."""
    days = np.asarray(purchased_at, dtype="datetime64[D]")
    values = np.asarray(amounts, dtype=np.float64)
    ids = np.asarray(customer_ids, dtype=object)
    start, end = np.datetime64(calibration_end, "D"), np.datetime64(observation_end, "D")
    later = (days > start) & (days <= end)
    position = {cid: i for i, cid in enumerate(cohort.tolist())}
    revenue = np.zeros(len(cohort))
    for cid, value in zip(ids[later].tolist(), values[later].tolist(), strict=True):
        if cid in position:
            revenue[position[cid]] += value
    return revenue
