"""A large synthetic shop made in SQL with ``generate_series``, for the retrain benchmark.

One tenant with ``customers`` customers and, per customer on average, ``orders`` orders
(2.5 lines each), ``events`` events, a fifth of a review and a tenth of a support
transcript, each text with a sentiment analysis, so that every source the v1 features
read is filled. The shapes are plausible rather than random noise:

* orders per customer are skewed (``power(random(), 1.6)`` over the customers): a few
  customers order often, about a fifth never do;
* order dates fall in the two years before now, more of them recent; 40 % of the
  customers stopped buying 60-560 days ago (their orders all fall before that), so the
  CLV models see dropouts; totals are log-normal-ish (about 30-150 EUR); a fifth of
  orders use a discount code; channels are web / app / store, 55 / 30 / 15 %;
* products: 500 in 7 categories; lines are 1-4 per order with quantities 1-2;
* events: the mix of the demo shop's event types over the last year.

Foreign-key triggers are off while loading (``session_replication_role = replica``):
the rows are consistent by construction and the checks would double the load time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

_STEPS: list[tuple[str, str]] = [
    (
        "customers",
        """INSERT INTO customer (tenant_id, customer_id, signup_at)
           SELECT %(t)s, 'c-' || g, %(now)s - power(random(), 0.7) * 1500 * interval '1 day'
           FROM generate_series(1, %(n)s) g""",
    ),
    (
        "products",
        """INSERT INTO product (tenant_id, product_id, name, category, price)
           SELECT %(t)s, 'p-' || g, 'product ' || g,
                  (ARRAY['knitwear', 'shoes', 'outerwear', 'accessories', 'home', 'beauty',
                         'basics'])[1 + g %% 7],
                  round((5 + power(random(), 2) * 295)::numeric, 2)
           FROM generate_series(1, 500) g""",
    ),
    (
        "orders",
        # u: a fixed per-customer number in [0, 1); 40 % of customers stopped buying
        # 60-560 days ago (d), the others are still active.
        """INSERT INTO orders (tenant_id, order_id, customer_pk, placed_at, currency, total,
                              channel, discount_code)
           SELECT %(t)s, 'o-' || s.g, s.pk,
                  %(now)s - (x.d + power(random(), 1.5) * (730 - x.d)) * interval '1 day',
                  'EUR', round(exp(3.4 + random() * 1.6)::numeric, 2),
                  CASE WHEN s.r < 0.55 THEN 'web' WHEN s.r < 0.85 THEN 'app' ELSE 'store' END,
                  CASE WHEN random() < 0.2 THEN 'SALE10' END
           FROM (SELECT g, random() AS r,
                        %(first)s + floor(power(random(), 1.6) * %(n)s::int)::bigint AS pk
                 FROM generate_series(1, %(orders)s) g) s
           CROSS JOIN LATERAL (
               SELECT CASE WHEN u < 0.4 THEN 60 + u / 0.4 * 500 ELSE 0 END AS d
               FROM (SELECT (s.pk * 2654435761 %% 1000003) / 1000003.0 AS u) h
           ) x""",
    ),
    (
        "order lines",
        """INSERT INTO order_line (order_pk, line_no, tenant_id, customer_pk, product_id,
                                  quantity, unit_price)
           SELECT o.id, l, %(t)s, o.customer_pk, 'p-' || (1 + floor(random() * 500)::int),
                  1 + floor(random() * 2)::int, round((5 + random() * 120)::numeric, 2)
           FROM orders o, generate_series(1, 1 + (o.id %% 4)::int) l
           WHERE o.tenant_id = %(t)s""",
    ),
    (
        "events",
        """INSERT INTO event (tenant_id, event_id, customer_pk, type, occurred_at, channel)
           SELECT %(t)s, 'e-' || g, %(first)s + floor(random() * %(n)s::int)::bigint,
                  (ARRAY['page_view', 'page_view', 'page_view', 'page_view', 'search',
                         'add_to_cart', 'checkout_start', 'email_open', 'email_open',
                         'email_click', 'app_session', 'app_session', 'store_visit',
                         'support_contact', 'purchase', 'return', 'refund'
                  ])[1 + floor(random() * 17)::int],
                  %(now)s - power(random(), 1.3) * 365 * interval '1 day', 'web'
           FROM generate_series(1, %(events)s) g""",
    ),
    (
        "reviews",
        """INSERT INTO review (tenant_id, review_id, customer_pk, rating, text, created_at)
           SELECT %(t)s, 'r-' || g, %(first)s + floor(random() * %(n)s::int)::bigint,
                  1 + floor(random() * 5)::int, 'fine', %(now)s - random() * 365 * interval '1 day'
           FROM generate_series(1, %(n)s::int / 5) g""",
    ),
    (
        "transcripts",
        """INSERT INTO transcript (tenant_id, transcript_id, customer_pk, channel, started_at)
           SELECT %(t)s, 't-' || g, %(first)s + floor(random() * %(n)s::int)::bigint, 'chat',
                  %(now)s - random() * 365 * interval '1 day'
           FROM generate_series(1, %(n)s::int / 10) g""",
    ),
    (
        "text analyses",
        """INSERT INTO text_analysis (tenant_id, customer_pk, source_kind, source_pk,
                                     model_version, backend, status, label, score, confidence,
                                     details, occurred_at)
           SELECT %(t)s, customer_pk, kind, id, 'bench-1', 'lexicon', 'ok',
                  CASE WHEN s < -0.05 THEN 'negative' WHEN s > 0.05 THEN 'positive'
                       ELSE 'neutral' END, s, 0.9,
                  CASE WHEN kind = 'transcript' AND s < -0.5
                       THEN '{"cues": {"refund": [1]}, "churn_risk": true}'::jsonb
                       ELSE '{}'::jsonb END, at
           FROM (SELECT customer_pk, 'review' AS kind, id, created_at AS at,
                        random() * 2 - 1 AS s
                 FROM review WHERE tenant_id = %(t)s
                 UNION ALL
                 SELECT customer_pk, 'transcript', id, started_at, random() * 2 - 1
                 FROM transcript WHERE tenant_id = %(t)s) x""",
    ),
]


@dataclass(frozen=True)
class ShopSize:
    customers: int
    orders: int  # per customer, on average
    events: int  # per customer, on average

    @property
    def label(self) -> str:
        return f"{_short(self.customers)} customers / {_short(self.customers * self.orders)} orders"


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1_000}k"


def generate_shop(
    url: str, size: ShopSize, tenant: str, log: Callable[[str], None]
) -> tuple[int, dict[str, int]]:
    """Create the tenant and its data; its id and the rows per table."""
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SELECT setseed(0.42)")
        tenant_id = _scalar(conn, "INSERT INTO tenant (name) VALUES (%s) RETURNING id", [tenant])
        params: dict[str, Any] = {
            "t": tenant_id,
            "n": size.customers,
            "orders": size.customers * size.orders,
            "events": size.customers * size.events,
            "now": now,
        }
        for name, statement in _STEPS:
            params["first"] = _scalar(
                conn, "SELECT coalesce(min(id), 0) FROM customer WHERE tenant_id = %s", [tenant_id]
            )
            started = time.perf_counter()
            conn.execute(statement, params)
            log(f"  {name:<14} {time.perf_counter() - started:6.1f} s")
        conn.execute("RESET session_replication_role")
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        log(f"  {'vacuum analyze':<14} {time.perf_counter() - started:6.1f} s")
        counts = {
            table: _scalar(conn, f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant_id])
            for table in ("customer", "orders", "order_line", "event", "text_analysis")
        }
    return tenant_id, counts


def _scalar(conn: psycopg.Connection[Any], query: str, params: list[Any]) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])
