"""Per-customer detectors: the recent window against the customer's own history.

Pure numpy, no database. Each detector takes a `Windows` (one row per customer, the
recent window's figure and one figure per earlier window of the same length, NaN where
the customer did not exist yet) and returns the customers it flags with the size of
the departure. The statistics are robust: a history's median and median absolute
deviation (MAD), never its mean and standard deviation, so one odd month in the
history neither hides nor fakes a departure; counts (refunds, contacts, orders) are
judged by a Poisson tail around the customer's own rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from scipy.stats import poisson  # type: ignore[import-untyped]

MAD_TO_SD = 1.4826  # the MAD of a normal distribution times this is its sd


class AnomalyKind(StrEnum):
    SPEND_SPIKE = "spend_spike"
    SPEND_COLLAPSE = "spend_collapse"
    REFUND_BURST = "refund_burst"
    SUPPORT_SURGE = "support_surge"
    SENTIMENT_DROP = "sentiment_drop"
    BOT_BURST = "bot_burst"
    POPULATION_OUTLIER = "population_outlier"


@dataclass(frozen=True)
class Windows:
    """``recent[i]``: customer i's figure in the recent window; ``history[i, j]``: in
    the j-th window before it (NaN where the customer did not exist yet)."""

    recent: NDArray[np.float64]
    history: NDArray[np.float64]

    def known(self) -> NDArray[np.int64]:
        """How many history windows each customer was around for."""
        return np.asarray((~np.isnan(self.history)).sum(axis=1), dtype=np.int64)


@dataclass(frozen=True)
class Flags:
    """The flagged customers (row indexes into the `Windows`), how far each departs
    (``size``), the window's figure and what the history predicted."""

    rows: NDArray[np.int64]
    size: NDArray[np.float64]
    observed: NDArray[np.float64]
    expected: NDArray[np.float64]


def _flags(
    mask: NDArray[np.bool_],
    size: NDArray[np.float64],
    observed: NDArray[np.float64],
    expected: NDArray[np.float64],
) -> Flags:
    rows = np.flatnonzero(mask)
    return Flags(rows, size[rows], observed[rows], expected[rows])


def robust_center_scale(
    history: NDArray[np.float64], *, floor: NDArray[np.float64] | float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each row's median and robust sd (MAD x 1.4826), the sd never below ``floor``."""
    usable = ~np.isnan(history).all(axis=1)
    center = np.zeros(len(history))
    mad = np.zeros(len(history))
    if usable.any():
        center[usable] = np.nanmedian(history[usable], axis=1)
        spread = np.abs(history[usable] - center[usable, None])
        mad[usable] = np.nanmedian(spread, axis=1)
    return center, np.maximum(MAD_TO_SD * mad, floor)


def robust_spike(
    windows: Windows,
    *,
    threshold: float,
    min_value: float,
    min_history: int,
    relative_floor: float = 0.0,
    absolute_floor: float = 1.0,
    min_active: int = 0,
) -> Flags:
    """Recent windows far above the history's median: a robust z of at least
    ``threshold`` and a figure of at least ``min_value``. The scale is the MAD, but
    never below ``relative_floor`` x the mean of the history's non-zero windows nor
    ``absolute_floor``, so a flat or sparse history (MAD 0: an occasional buyer's
    months are mostly empty) does not make every ordinary purchase a spike; and a
    customer needs ``min_active`` non-zero history windows at all (without any, there
    is no usual level to rise above)."""
    history = windows.history
    active = np.where(history > 0, history, np.nan)
    means = np.zeros(len(history))
    some = ~np.isnan(active).all(axis=1)
    means[some] = np.nanmean(active[some], axis=1)
    floor = np.maximum(relative_floor * means, absolute_floor)
    center, scale = robust_center_scale(history, floor=floor)
    z = (windows.recent - center) / scale
    mask = (windows.known() >= min_history) & (z >= threshold) & (windows.recent >= min_value)
    mask &= (~np.isnan(active)).sum(axis=1) >= min_active
    return _flags(mask, z, windows.recent, center)


def count_burst(
    windows: Windows,
    *,
    alpha: float,
    min_count: float,
    min_history: int,
    prior_windows: float = 1.0,
    prior_count: float = 0.5,
) -> Flags:
    """Counts (refunds, contacts) the customer's own rate makes implausible: the chance
    of at least the recent count under a Poisson at the history's rate is at most
    ``alpha``, and the count is at least ``min_count``. The rate is shrunk towards
    ``prior_count`` per ``prior_windows``, so a short quiet history is not certainty
    that the rate is zero. The size is the Poisson z, (count - rate) / sqrt(rate)."""
    known = windows.known()
    total = np.nansum(windows.history, axis=1)
    rate = (total + prior_count) / (known + prior_windows)
    recent = windows.recent
    tail = poisson.sf(recent - 1, rate)  # P(X >= recent)
    z = (recent - rate) / np.sqrt(rate)
    mask = (known >= min_history) & (recent >= min_count) & (tail <= alpha)
    return _flags(mask, z, recent, rate)


def merge_recent(windows: Windows, span: int) -> Windows:
    """The same figures with the ``span`` most recent windows as one recent period (a
    slow buyer's gap needs a longer look than a burst does); history keeps the rest."""
    if span <= 1:
        return windows
    head = windows.history[:, : span - 1]
    recent = windows.recent + np.nansum(head, axis=1)
    return Windows(recent=recent, history=windows.history[:, span - 1 :])


def count_collapse(
    orders: Windows,
    spend: Windows,
    *,
    alpha: float,
    min_expected: float,
    min_history: int,
    span: int = 1,
) -> Flags:
    """Regular buyers who stopped: the chance of at most the recent number of orders
    under a Poisson at the customer's own rate is at most ``alpha`` (so only a rate of
    several orders a window can collapse: a monthly buyer's empty month is no news),
    and the recent spend is under a fifth of the usual. The size is the orders that
    were expected and did not come, in the rate's sds. With ``span`` > 1 the recent
    period is that many windows long (`merge_recent`)."""
    orders, spend = merge_recent(orders, span), merge_recent(spend, span)
    known = orders.known()
    rate = span * np.nansum(orders.history, axis=1) / np.maximum(known, 1)
    usual_spend, _ = robust_center_scale(spend.history, floor=0.0)
    usual_spend = span * usual_spend
    head = poisson.cdf(orders.recent, rate)  # P(X <= recent)
    z = (rate - orders.recent) / np.sqrt(np.maximum(rate, 1e-9))
    mask = (
        (known >= min_history)
        & (rate >= min_expected)
        & (head <= alpha)
        & (spend.recent < 0.2 * usual_spend)
    )
    return _flags(mask, z, spend.recent, usual_spend)


def sentiment_drop(
    recent_score: NDArray[np.float64],
    recent_count: NDArray[np.float64],
    history_score: NDArray[np.float64],
    history_count: NDArray[np.float64],
    *,
    negative: float,
    min_drop: float,
    min_recent: int,
    min_history: int,
) -> Flags:
    """Customers whose recent texts are negative (median score at most ``negative``)
    after a history that was not (median score dropped by at least ``min_drop``). The
    scores are the median over each period's texts; the size is the drop."""
    drop = history_score - recent_score
    mask = (
        (recent_count >= min_recent)
        & (history_count >= min_history)
        & (recent_score <= negative)
        & (drop >= min_drop)
    )
    mask &= ~np.isnan(drop)
    return _flags(mask, np.nan_to_num(drop), recent_score, history_score)
