"""Fit BG/NBD and Gamma-Gamma on a tenant's purchase history and store every customer's CLV.

The history comes from the feature vectors, which condense it in the same SQL pass over
the orders as every other feature (same-day purchases merged): purchase days, the ages of
the first and the last purchase day, the mean spend per repeat day. Churn is not
1 - P(alive) (P(alive) is 1 for every one-time buyer, so the newest one-off customers
would look safest): the supervised churn model (`services.segment.predictions`) writes it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlmodel import Session

from services.segment.bulk import copy_temp_table
from services.segment.clv import BGNBD, GammaGamma, customer_lifetime_value
from services.segment.clv.data import CustomerSummary
from services.segment.features import FeatureMatrix
from services.segment.scoring.clv_trust import (
    DEFAULT_MIN_HISTORY_DAYS,
    untrusted,
    untrusted_reason,
)

log = logging.getLogger(__name__)
MIN_REPEAT_CUSTOMERS = 20  # below this the spend model has nothing to learn from
# Maximum likelihood can run off to the boundary (a, b -> infinity: nobody ever drops out),
# where the expected-purchases series has no finite value; a touch of L2 keeps it inside.
# For Gamma-Gamma, p beyond DEGENERATE means spend hardly varies between customers.
DEGENERATE = 1e4
PENALIZER = 1e-4
# The models have 4 and 3 population parameters: a seeded sample of customers pins them
# down as well as everyone does, at a fixed cost (a 1M-customer tenant took ~5 minutes of
# likelihood evaluations on all rows). Every customer is then scored.
FIT_SAMPLE = 50_000

# The stored features that make the purchase history, in CustomerSummary's terms.
HISTORY_FEATURES = (
    "purchase_days",
    "first_purchase_age_days",
    "last_purchase_age_days",
    "repeat_day_spend",
)
# Nelder-Mead settles three parameters in a few hundred steps; a spend fit still going
# after this many is drifting along a flat ridge (spend that barely varies between
# customers), and each step costs a pass over the sample.
SPEND_MAX_ITER = 1_000
_STORE = text(
    """
    INSERT INTO customer_score AS s (customer_pk, tenant_id, clv, p_alive, expected_purchases,
                                     updated_at)
    SELECT u.pk, :tenant, nullif(u.clv, 'NaN'), nullif(u.p_alive, 'NaN'),
           nullif(u.expected, 'NaN'), now()
    FROM clv_scores u
    ON CONFLICT (customer_pk) DO UPDATE SET clv = EXCLUDED.clv, p_alive = EXCLUDED.p_alive,
        expected_purchases = EXCLUDED.expected_purchases, updated_at = now()
    """
)


class ObservedSpend(GammaGamma):
    """The fallback when Gamma-Gamma degenerates: a repeat customer's own mean spend,
    the population's mean for a customer without repeat purchases. ``params_`` keeps
    what the failed fit reached, for the record."""

    def expected_average_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        population = float(m[x > 0].mean()) if (x > 0).any() else 0.0
        return np.where(x > 0, m, population)


@dataclass(frozen=True)
class ClvOutcome:
    customers: int
    params: dict[str, Any]  # what was fitted, or why nothing was
    customer_pks: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    clv: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    p_alive: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))

    def apply(self, matrix: FeatureMatrix) -> None:
        """Put these scores into the matrix's ``clv`` and ``p_alive`` columns (scored rows)."""
        if not len(self.customer_pks):
            return
        rows = np.searchsorted(matrix.customer_pks, self.customer_pks)
        for name, values in (("clv", self.clv), ("p_alive", self.p_alive)):
            if name in matrix.names:
                matrix.values[rows, matrix.names.index(name)] = np.nan_to_num(values)


def purchase_history(matrix: FeatureMatrix, as_of: datetime) -> CustomerSummary | None:
    """The customers with orders and their history, from the matrix; None when the feature
    set does not carry the history."""
    if not set(HISTORY_FEATURES) <= set(matrix.names):
        return None
    days, first_age, last_age, spend = (
        matrix.values[:, matrix.names.index(name)] for name in HISTORY_FEATURES
    )
    bought = days > 0
    return CustomerSummary(
        customer_ids=matrix.customer_pks[bought],
        frequency=days[bought] - 1.0,
        recency=(first_age - last_age)[bought],
        T=first_age[bought],
        monetary_value=spend[bought],
        unit="D",
        calibration_end=as_of.date(),
    )


def score_customers(
    session: Session,
    *,
    tenant_id: int,
    matrix: FeatureMatrix,
    as_of: datetime,
    horizon_days: int,
    discount_rate: float,
    min_history_days: float = DEFAULT_MIN_HISTORY_DAYS,
) -> ClvOutcome:
    """Fit both models on the history in ``matrix`` (computed as of ``as_of``) and upsert
    every customer's scores; a customer with too little history (`clv_trust`) gets no CLV
    and no expected purchases (null)."""
    summary = purchase_history(matrix, as_of)
    if summary is None:
        return ClvOutcome(customers=0, params={"skipped": "the feature set has no history"})
    repeaters = int((summary.frequency > 0).sum())
    if repeaters < MIN_REPEAT_CUSTOMERS:
        reason = f"{repeaters} repeat customers; at least {MIN_REPEAT_CUSTOMERS} are needed"
        return ClvOutcome(customers=0, params={"skipped": reason})
    history = (summary.frequency, summary.recency, summary.T)
    transactions, spend, notes = fit_models(summary, _fit_rows(len(summary), seed=tenant_id))
    value = np.round(
        customer_lifetime_value(
            transactions, spend, summary, horizon=horizon_days, discount_rate=discount_rate
        ),
        2,
    )
    p_alive = transactions.probability_alive(*history)
    expected = transactions.expected_purchases(float(horizon_days), *history)
    withheld = untrusted(summary.frequency, summary.T, min_history_days=min_history_days)
    value[withheld] = np.nan
    expected[withheld] = np.nan
    notes.append(
        f"{int(withheld.sum()):,} customers withheld: {untrusted_reason(min_history_days)}"
    )
    params = {
        # As text: Postgres prints a huge float (a mixture that degenerates to one spend
        # level drives p and q up without bound) back as a 150-digit integer.
        "bgnbd": {k: f"{v:.6g}" for k, v in asdict(transactions.params_).items()},
        "gamma_gamma": {k: f"{v:.6g}" for k, v in asdict(spend.params_).items()},
        "notes": notes,
        "horizon_days": horizon_days,
        "discount_rate": discount_rate,
        "as_of": as_of.isoformat(),
    }
    copy_temp_table(
        session,
        "clv_scores",
        {
            "pk": summary.customer_ids,
            "clv": _finite(value),
            "p_alive": _finite(p_alive),
            "expected": _finite(expected),
        },
    )
    session.execute(_STORE, {"tenant": tenant_id})
    session.execute(text("ANALYZE customer_score"))
    log.info("CLV scored for %d customers", len(summary))
    return ClvOutcome(len(summary), params, summary.customer_ids, value, p_alive)


def clv_for_segments(matrix: FeatureMatrix, outcome: ClvOutcome) -> NDArray[np.float64]:
    """Each matrix row's CLV for segment figures: NaN where it was withheld (the matrix
    holds 0 there, as models need numbers), 0 for customers who never ordered."""
    values = (
        matrix.values[:, matrix.names.index("clv")].copy()
        if "clv" in matrix.names
        else np.zeros(len(matrix))
    )
    if len(outcome.customer_pks):
        rows = np.searchsorted(matrix.customer_pks, outcome.customer_pks)
        values[rows] = outcome.clv
    return np.asarray(values, dtype=np.float64)


def fit_models(summary: CustomerSummary, rows: np.ndarray) -> tuple[BGNBD, GammaGamma, list[str]]:
    """BG/NBD and the spend model fitted on ``rows`` of ``summary``, and notes on how."""
    sample = (summary.frequency[rows], summary.recency[rows], summary.T[rows])
    # Penalised from the start: an unpenalised fit that runs off to the boundary spends
    # minutes of likelihood evaluations getting there (196 s on 50k customers, measured).
    transactions = BGNBD(penalizer=PENALIZER).fit(*sample)
    notes = [
        f"fitted on {len(rows):,} of {len(summary):,} customers",
        f"BG/NBD with an L2 penalizer of {PENALIZER}",
    ]
    spend_sample = (summary.frequency[rows], summary.monetary_value[rows])
    spend: GammaGamma = GammaGamma(max_iter=SPEND_MAX_ITER).fit(*spend_sample)
    if not spend.converged_ or spend.params_.p > DEGENERATE or spend.params_.q <= 1:
        attempted = spend.params_
        spend = ObservedSpend()
        spend.params_ = attempted
        notes.append(
            "spend varies too little between customers for Gamma-Gamma: each "
            "customer's observed mean spend is used"
        )
    return transactions, spend, notes


def _fit_rows(n: int, *, seed: int) -> np.ndarray:
    if n <= FIT_SAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=FIT_SAMPLE, replace=False))


def _finite(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """NaN (stored as NULL) where the model has no finite answer (a degenerate fit)."""
    return np.where(np.isfinite(values), values, np.nan)
