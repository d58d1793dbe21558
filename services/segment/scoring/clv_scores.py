"""Fit BG/NBD and Gamma-Gamma on a tenant's orders and store every customer's CLV.

The order history is condensed in SQL (same-day purchases merged, one row per customer)
so only customers, not orders, travel to Python. Churn is 1 - P(alive): the probability
that the customer has already left, by the BG/NBD model.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from sqlalchemy import text
from sqlmodel import Session

from services.segment.clv import BGNBD, GammaGamma, customer_lifetime_value
from services.segment.clv.data import CustomerSummary

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

_HISTORY = text(
    """
    WITH days AS (
        SELECT customer_pk, (placed_at AT TIME ZONE 'UTC')::date AS day, sum(total) AS amount
        FROM orders WHERE tenant_id = :tenant AND placed_at <= :as_of
        GROUP BY 1, 2
    ), numbered AS (
        SELECT customer_pk, day, amount,
               row_number() OVER (PARTITION BY customer_pk ORDER BY day) AS n
        FROM days
    )
    SELECT customer_pk, count(*) - 1, min(day), max(day),
           coalesce(avg(amount) FILTER (WHERE n > 1), 0)::float8
    FROM numbered GROUP BY customer_pk
    """
)
_STORE = text(
    """
    INSERT INTO customer_score AS s (customer_pk, tenant_id, clv, p_alive, expected_purchases,
                                     churn, model, updated_at)
    SELECT u.pk, :tenant, u.clv, u.p_alive, u.expected, 1 - u.p_alive,
           CAST(:model AS jsonb), now()
    FROM unnest(CAST(:pks AS bigint[]), CAST(:clv AS float8[]), CAST(:p_alive AS float8[]),
                CAST(:expected AS float8[])) AS u(pk, clv, p_alive, expected)
    ON CONFLICT (customer_pk) DO UPDATE SET clv = EXCLUDED.clv, p_alive = EXCLUDED.p_alive,
        expected_purchases = EXCLUDED.expected_purchases, churn = EXCLUDED.churn,
        model = EXCLUDED.model, updated_at = now()
    """
)


class ObservedSpend(GammaGamma):
    """The fallback when Gamma-Gamma degenerates: a repeat customer's own mean spend,
    the population's mean for a customer without repeat purchases."""

    def expected_average_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        population = float(m[x > 0].mean()) if (x > 0).any() else 0.0
        return np.where(x > 0, m, population)


@dataclass(frozen=True)
class ClvOutcome:
    customers: int
    params: dict[str, Any]  # what was fitted, or why nothing was


def _summary(session: Session, tenant_id: int, as_of: datetime) -> CustomerSummary:
    rows = session.execute(_HISTORY, {"tenant": tenant_id, "as_of": as_of}).all()
    pks = np.array([r[0] for r in rows], dtype=np.int64)
    first = np.array([r[2] for r in rows], dtype="datetime64[D]")
    last = np.array([r[3] for r in rows], dtype="datetime64[D]")
    end = np.datetime64(as_of.date(), "D")
    return CustomerSummary(
        customer_ids=pks,
        frequency=np.array([r[1] for r in rows], dtype=np.float64),
        recency=(last - first).astype(np.float64),
        T=np.maximum((end - first).astype(np.float64), 0.0),
        monetary_value=np.array([r[4] for r in rows], dtype=np.float64),
        unit="D",
        calibration_end=as_of.date(),
    )


def score_customers(
    session: Session, *, tenant_id: int, as_of: datetime, horizon_days: int, discount_rate: float
) -> ClvOutcome:
    """Fit both models on the tenant's orders up to ``as_of`` and upsert every score."""
    summary = _summary(session, tenant_id, as_of)
    repeaters = int((summary.frequency > 0).sum())
    if repeaters < MIN_REPEAT_CUSTOMERS:
        reason = f"{repeaters} repeat customers; at least {MIN_REPEAT_CUSTOMERS} are needed"
        return ClvOutcome(customers=0, params={"skipped": reason})
    history = (summary.frequency, summary.recency, summary.T)
    rows = _fit_rows(len(summary), seed=tenant_id)
    sample = (summary.frequency[rows], summary.recency[rows], summary.T[rows])
    # Penalised from the start: an unpenalised fit that runs off to the boundary spends
    # minutes of likelihood evaluations getting there (196 s on 50k customers, measured).
    transactions = BGNBD(penalizer=PENALIZER).fit(*sample)
    notes = [
        f"fitted on {len(rows):,} of {len(summary):,} customers",
        f"BG/NBD with an L2 penalizer of {PENALIZER}",
    ]
    spend_sample = (summary.frequency[rows], summary.monetary_value[rows])
    spend: GammaGamma = GammaGamma().fit(*spend_sample)
    if spend.params_.p > DEGENERATE or spend.params_.q <= 1:
        spend = ObservedSpend().fit(*spend_sample)
        notes.append(
            "spend varies too little between customers for Gamma-Gamma: each "
            "customer's observed mean spend is used"
        )
    value = customer_lifetime_value(
        transactions, spend, summary, horizon=horizon_days, discount_rate=discount_rate
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
    session.execute(
        _STORE,
        {
            "tenant": tenant_id,
            "model": _json(params),
            "pks": summary.customer_ids.tolist(),
            "clv": _finite(np.round(value, 2)),
            "p_alive": _finite(transactions.probability_alive(*history)),
            "expected": _finite(transactions.expected_purchases(float(horizon_days), *history)),
        },
    )
    log.info("CLV scored for %d customers", len(summary))
    return ClvOutcome(customers=len(summary), params=params)


def _fit_rows(n: int, *, seed: int) -> np.ndarray:
    if n <= FIT_SAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=FIT_SAMPLE, replace=False))


def _finite(values: np.ndarray) -> list[float | None]:
    """NULL where the model has no finite answer (a degenerate fit), never NaN in a score."""
    return [float(v) if np.isfinite(v) else None for v in values]


def _json(value: dict[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
