"""Where the CLV model is not to be believed: customers with too little history.

BG/NBD has nothing of a customer's own to go on after a single order: P(alive) is 1 by
construction and the expected purchases are the population's prior, so the model's
value for someone who ordered once, recently, is the average repeat buyer's (the demo
showed a one-order EUR 160 customer valued at EUR 2,020). The time-split check
(`clv_validation`, ``python -m bench.clv_split``) measures how far off that group is.
Such a customer gets no CLV (null) and the reason, rather than a number.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

# A one-order customer observed for less than this is not valued.
DEFAULT_MIN_HISTORY_DAYS = 180.0


def untrusted(frequency: ArrayLike, T: ArrayLike, *, min_history_days: float) -> NDArray[np.bool_]:  # noqa: N803
    """Customers without a repeat purchase whose first order is under
    ``min_history_days`` old (``T`` in days)."""
    x, age = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
    return np.asarray((x <= 0) & (age < min_history_days), dtype=bool)


def untrusted_reason(min_history_days: float) -> str:
    return (
        f"too little history: one order, first placed under {min_history_days:.0f} days ago; "
        "the model would only repeat the average repeat buyer's value"
    )
