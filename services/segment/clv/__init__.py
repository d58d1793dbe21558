"""Customer lifetime value: BG/NBD purchase counts and P(alive), Gamma-Gamma spend.

Typical use, from one row per transaction::

    summary = summarize_transactions(ids, purchased_at, amounts,
                                     calibration_end=date(2026, 9, 30), unit="W")
    transactions = BGNBD().fit(summary.frequency, summary.recency, summary.T)
    spend = GammaGamma().fit(summary.frequency, summary.monetary_value)
    value = customer_lifetime_value(transactions, spend, summary,
                                    horizon=52, discount_rate=0.10)

The estimators take plain arrays and never touch the database.
"""

from services.segment.clv.data import CustomerSummary, summarize_transactions
from services.segment.clv.models import BGNBD, BGNBDParams, GammaGamma, GammaGammaParams
from services.segment.clv.value import HoldoutError, customer_lifetime_value, holdout_error

__all__ = [
    "BGNBD",
    "BGNBDParams",
    "CustomerSummary",
    "GammaGamma",
    "GammaGammaParams",
    "HoldoutError",
    "customer_lifetime_value",
    "holdout_error",
    "summarize_transactions",
]
