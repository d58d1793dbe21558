"""What the detectors read: per customer and window, spend, orders, refunds, support
contacts, event bursts and sentiment, as of a cut-off (nothing after it is read).

Sentiment is the median score of the texts in the recent window against that of every
earlier text. Window 0 is the recent one, ``(as_of - days, as_of]``; window j the j-th before it. A
customer's windows that end before they were first seen (signed up, ordered or acted)
are NaN, not 0: a new customer has no quiet history to depart from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlmodel import Session

from services.segment.anomalies.detectors import Windows

# Raw SQL: one pass per source table, bucketed by window, in long form (metric, customer,
# window, value); numpy pivots it. ``w`` = (as_of - t) / days, floored.
_WINDOWED = text(
    """
    WITH o AS (
        SELECT customer_pk, floor(date_part('epoch', :as_of - placed_at) / :secs)::int AS w,
               total::float8 AS total
        FROM orders
        WHERE tenant_id = :tenant AND placed_at <= :as_of AND placed_at > :start
    ), e AS (
        SELECT customer_pk, type, occurred_at,
               floor(date_part('epoch', :as_of - occurred_at) / :secs)::int AS w
        FROM event
        WHERE tenant_id = :tenant AND occurred_at <= :as_of AND occurred_at > :start
    ), hourly AS (
        SELECT customer_pk, w, count(*) AS n FROM e
        GROUP BY customer_pk, w, date_trunc('hour', occurred_at)
    ), texts AS (
        SELECT DISTINCT ON (source_kind, source_pk) customer_pk, score,
               floor(date_part('epoch', :as_of - occurred_at) / :secs)::int AS w
        FROM text_analysis
        WHERE tenant_id = :tenant AND status = 'ok' AND score IS NOT NULL
          AND occurred_at <= :as_of
        ORDER BY source_kind, source_pk, analyzed_at DESC, id DESC
    )
    SELECT 'spend' AS metric, customer_pk, w, sum(total) AS value FROM o GROUP BY 2, 3
    UNION ALL
    SELECT 'orders', customer_pk, w, count(*) FROM o GROUP BY 2, 3
    UNION ALL
    SELECT 'refunds', customer_pk, w, count(*) FROM e WHERE type = 'refund' GROUP BY 2, 3
    UNION ALL
    SELECT 'contacts', customer_pk, w, count(*) FROM e
    WHERE type = 'support_contact' GROUP BY 2, 3
    UNION ALL
    SELECT 'contacts', customer_pk,
           floor(date_part('epoch', :as_of - started_at) / :secs)::int, count(*)
    FROM transcript
    WHERE tenant_id = :tenant AND started_at <= :as_of AND started_at > :start GROUP BY 2, 3
    UNION ALL
    SELECT 'burst', customer_pk, w, max(n) FROM hourly GROUP BY 2, 3
    UNION ALL
    SELECT 'sentiment_recent', customer_pk, 0,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY score) FROM texts WHERE w = 0 GROUP BY 2
    UNION ALL
    SELECT 'sentiment_recent_n', customer_pk, 0, count(*) FROM texts WHERE w = 0 GROUP BY 2
    UNION ALL
    SELECT 'sentiment_history', customer_pk, 1,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY score) FROM texts WHERE w > 0 GROUP BY 2
    UNION ALL
    SELECT 'sentiment_history_n', customer_pk, 1, count(*) FROM texts WHERE w > 0 GROUP BY 2
    """
)
# When each customer was first seen: sign-up, first order or first event.
_FIRST_SEEN = text(
    """
    SELECT c.id, least(c.signup_at, o.first_at, e.first_at, c.created_at) AS first_at
    FROM customer c
    LEFT JOIN (SELECT customer_pk, min(placed_at) AS first_at FROM orders
               WHERE tenant_id = :tenant GROUP BY 1) o ON o.customer_pk = c.id
    LEFT JOIN (SELECT customer_pk, min(occurred_at) AS first_at FROM event
               WHERE tenant_id = :tenant GROUP BY 1) e ON e.customer_pk = c.id
    WHERE c.tenant_id = :tenant
    ORDER BY c.id
    """
)
COUNTS = ("spend", "orders", "refunds", "contacts", "burst")
SENTIMENT = ("sentiment_recent", "sentiment_recent_n", "sentiment_history", "sentiment_history_n")


@dataclass(frozen=True)
class Behaviour:
    """Every customer of a tenant (sorted by pk) and their windows per metric."""

    customer_pks: NDArray[np.int64]
    windows: dict[str, Windows]
    sentiment: dict[str, NDArray[np.float64]]


def load_behaviour(
    session: Session, *, tenant_id: int, as_of: datetime, window_days: int, history_windows: int
) -> Behaviour:
    secs = window_days * 86_400
    seen = session.execute(_FIRST_SEEN, {"tenant": tenant_id}).all()
    pks = np.array([row[0] for row in seen], dtype=np.int64)
    ages = np.array(
        [(as_of - row[1]).total_seconds() if row[1] else 0.0 for row in seen], dtype=np.float64
    )
    index = {int(pk): i for i, pk in enumerate(pks)}
    width = history_windows + 1
    dense = {name: np.zeros((len(pks), width)) for name in COUNTS}
    sentiment = {name: np.full(len(pks), np.nan) for name in SENTIMENT}
    start = as_of.timestamp() - width * secs
    params = {
        "tenant": tenant_id,
        "as_of": as_of,
        "secs": secs,
        "start": datetime.fromtimestamp(start, as_of.tzinfo),
    }
    for metric, pk, w, value in session.execute(_WINDOWED, params):
        row = index.get(int(pk))
        if row is None or not 0 <= w < width:
            continue
        if metric in sentiment:
            sentiment[metric][row] = float(value)
        else:
            dense[metric][row, w] += float(value)
    # Window j (j >= 1) starts j + 1 windows before as_of: unknown unless the customer
    # was around for all of it (a half-seen window would read as a quiet one).
    existed = ages[:, None] >= np.arange(2, width + 1)[None, :] * secs
    windows = {
        name: Windows(recent=values[:, 0], history=np.where(existed, values[:, 1:], np.nan))
        for name, values in dense.items()
    }
    for name in ("sentiment_recent_n", "sentiment_history_n"):
        sentiment[name] = np.nan_to_num(sentiment[name])
    return Behaviour(pks, windows, sentiment)
