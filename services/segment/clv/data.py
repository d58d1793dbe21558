"""Per-customer recency/frequency/monetary summaries from a transactions table (numpy only).

Conventions, as in the BG/NBD and Gamma-Gamma papers (Fader, Hardie & Lee, 2005):

* Purchases on the same calendar day are merged into one (their amounts summed), so a
  basket paid in two parts counts once.
* ``frequency`` is the number of repeat purchases (purchase days after the first) up to
  and including ``calibration_end``; ``recency`` is the time from the first to the last
  of those purchases, ``T`` the time from the first purchase to ``calibration_end``, both
  in ``unit`` and continuous (a customer who first bought on 1997-01-01 has T = 38.86 weeks
  at 1997-09-30).
* ``monetary_value`` is the mean value of the repeat purchases (the first purchase is left
  out) and 0 for customers without one.
* Customers whose first purchase comes after ``calibration_end`` are not in the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

Unit = Literal["D", "W"]
FloatArray = NDArray[np.float64]
DAYS_PER_UNIT: dict[str, float] = {"D": 1.0, "W": 7.0}
DAYS_PER_YEAR = 365.25
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()  # day 0 of datetime64[D]


@dataclass(frozen=True)
class CustomerSummary:
    customer_ids: NDArray[Any]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray
    unit: Unit
    calibration_end: date
    observation_end: date | None = None
    # Repeat purchase days in (calibration_end, observation_end]; None without observation_end.
    holdout_frequency: FloatArray | None = None

    def __len__(self) -> int:
        return len(self.customer_ids)

    @property
    def periods_per_year(self) -> float:
        return DAYS_PER_YEAR / DAYS_PER_UNIT[self.unit]

    @property
    def holdout_duration(self) -> float | None:
        """Length of the holdout period in ``unit``."""
        if self.observation_end is None:
            return None
        days = (self.observation_end - self.calibration_end).days
        return days / DAYS_PER_UNIT[self.unit]


def summarize_transactions(
    customer_ids: ArrayLike,
    purchased_at: ArrayLike | Sequence[date],
    amounts: ArrayLike,
    *,
    calibration_end: date,
    observation_end: date | None = None,
    unit: str = "W",
) -> CustomerSummary:
    """Summarise one row per transaction into one row per customer.

    ``purchased_at`` holds dates or datetimes (anything numpy converts to ``datetime64``:
    ``date``/naive ``datetime`` objects, ISO strings, datetime64 values); only the day
    counts.
    """
    checked_unit = check_unit(unit)
    if observation_end is not None and observation_end <= calibration_end:
        raise ValueError("observation_end must come after calibration_end")
    end = _day_number(calibration_end)
    ids, days, values = _check_transactions(customer_ids, purchased_at, amounts)
    keys, codes, days, values = _merge_same_day(ids, days, values)
    n = len(keys)
    first_day = days[np.unique(codes, return_index=True)[1]]
    repeat = (days > first_day[codes]) & (days <= end)
    frequency = _count(codes, repeat, n)
    spent = _count(codes, np.where(repeat, values, 0.0), n)
    last_day = first_day.copy()
    np.maximum.at(last_day, codes[repeat], days[repeat])
    per_unit = DAYS_PER_UNIT[checked_unit]
    cohort = first_day <= end
    holdout = None
    if observation_end is not None:
        in_holdout = (days > end) & (days <= _day_number(observation_end))
        holdout = _count(codes, in_holdout, n)[cohort]
    return CustomerSummary(
        customer_ids=keys[cohort],
        frequency=frequency[cohort],
        recency=((last_day - first_day) / per_unit)[cohort],
        T=((end - first_day) / per_unit)[cohort],
        monetary_value=(spent / np.maximum(frequency, 1.0))[cohort],
        unit=checked_unit,
        calibration_end=calibration_end,
        observation_end=observation_end,
        holdout_frequency=holdout,
    )


def check_unit(unit: str) -> Unit:
    if unit not in DAYS_PER_UNIT:
        raise ValueError(f"unit must be one of {sorted(DAYS_PER_UNIT)}, not {unit!r}")
    return cast(Unit, unit)


def _check_transactions(
    customer_ids: ArrayLike, purchased_at: ArrayLike | Sequence[date], amounts: ArrayLike
) -> tuple[NDArray[Any], NDArray[np.int64], FloatArray]:
    ids = np.asarray(customer_ids)
    values = np.asarray(amounts, dtype=np.float64)
    try:
        stamps = np.asarray(purchased_at, dtype="datetime64[us]")
    except (TypeError, ValueError) as error:
        raise ValueError(f"purchased_at must hold dates or datetimes: {error}") from error
    if not ids.ndim == stamps.ndim == values.ndim == 1:
        raise ValueError("customer_ids, purchased_at and amounts must be one-dimensional")
    if not len(ids) == len(stamps) == len(values):
        raise ValueError("customer_ids, purchased_at and amounts must have the same length")
    if len(ids) == 0:
        raise ValueError("no transactions")
    if np.any(np.isnat(stamps)):
        raise ValueError("purchased_at holds missing values")
    if not np.all(np.isfinite(values)):
        raise ValueError("amounts must be finite numbers")
    days = stamps.astype("datetime64[D]").astype(np.int64)
    return ids, days, values


def _merge_same_day(
    ids: NDArray[Any], days: NDArray[np.int64], values: FloatArray
) -> tuple[NDArray[Any], NDArray[np.intp], NDArray[np.int64], FloatArray]:
    """The distinct customer ids, and one row per (customer, day) with the day's amounts
    summed, sorted by customer (as an index into the ids) and day."""
    keys, codes = np.unique(ids, return_inverse=True)
    codes = codes.ravel()
    order = np.lexsort((days, codes))
    codes, days, values = codes[order], days[order], values[order]
    starts = np.flatnonzero(np.r_[True, (codes[1:] != codes[:-1]) | (days[1:] != days[:-1])])
    return keys, codes[starts], days[starts], np.add.reduceat(values, starts)


def _count(codes: NDArray[np.intp], weights: NDArray[Any], n: int) -> FloatArray:
    """Per-customer sums of ``weights``."""
    return np.bincount(codes, weights=weights, minlength=n).astype(np.float64)


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL
