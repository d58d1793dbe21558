"""Feature set v1: RFM, purchase rhythm and habits, channel and category mix, recent
engagement, support contacts and time-decayed sentiment.

Every source table is read once and aggregated per customer (``GROUP BY customer_pk``);
the aggregates are then joined to the customers in scope. Times are read in UTC: tenants
have no time zone yet. A customer without orders, events or
analysed texts still gets a row: every feature has a defined value (0 unless said
otherwise) and the ``has_*`` flags tell "none" from "zero".
"""

from __future__ import annotations

from types import MappingProxyType

from services.segment.features.sets import Feature, FeatureSet

# Placeholders and parameters are documented in services.segment.features.sql. Times are
# turned into days since 1970-01-01 UTC (``t``) once per row: float arithmetic on them
# folds into constants at planning, where timestamp arithmetic runs again for every row.
CTES = """
scoped AS (
    SELECT c.id AS customer_pk, date_part('epoch', c.signup_at) / 86400 AS signup_t
    FROM customer c
    WHERE c.tenant_id = :tenant_id AND {customers}
),
ord AS (
    SELECT customer_pk,
           count(*) AS n,
           min(t) AS first_t,
           max(t) AS last_t,
           sum(total)::float8 AS spend,
           count(*) FILTER (WHERE t > :as_of_days - 365) AS n_365d,
           count(*) FILTER (WHERE new_day) AS n_days,
           sum(total) FILTER (WHERE repeat_day)::float8 AS repeat_spend,
           count(discount_code) AS n_discount,
           avg(gap) AS ipt_mean,
           stddev_pop(gap) AS ipt_std,
           count(*) FILTER (WHERE kind = 'web') AS n_web,
           count(*) FILTER (WHERE kind = 'app') AS n_app,
           count(*) FILTER (WHERE kind = 'store') AS n_store,
           count(*) FILTER (WHERE (floor(t)::int % 7 + 10) % 7 >= 5) AS n_weekend,  -- Sa, Su
           count(*) FILTER (WHERE t - floor(t) >= 0.75) AS n_evening,  -- from 18:00
           avg(sin(2 * pi() * t)) AS hour_sin,  -- the time of day on the unit circle
           avg(cos(2 * pi() * t)) AS hour_cos,
           array_agg(floor(t)::int) FILTER (WHERE t > :as_of_days - :window_days - 1)
               AS order_days
    FROM (
        SELECT customer_pk, total, discount_code, t,
               t - lag(t) OVER w AS gap,
               floor(t) > floor(coalesce(lag(t) OVER w, '-infinity')) AS new_day,
               floor(t) > floor(first_value(t) OVER w) AS repeat_day,
               CASE WHEN lower(channel) IN ('web', 'online', 'website') THEN 'web'
                    WHEN lower(channel) IN ('app', 'mobile_app', 'ios', 'android') THEN 'app'
                    WHEN lower(channel) IN ('store', 'pos', 'retail', 'in_store') THEN 'store'
               END AS kind
        FROM (
            SELECT customer_pk, total, discount_code, channel,
                   date_part('epoch', placed_at) / 86400 AS t
            FROM orders
            WHERE tenant_id = :tenant_id AND placed_at <= :as_of AND {rows}
        ) o
        WINDOW w AS (PARTITION BY customer_pk ORDER BY t)
    ) o
    GROUP BY customer_pk
),
lines AS (
    -- Lines carry their order's customer; only the orders after as_of (few or none) are
    -- looked up, to leave their lines out. Categories compare as bytes: sorting by them in
    -- the collation's order costs more.
    SELECT l.customer_pk, p.category COLLATE "C" AS category,
           sum(l.quantity)::float8 AS qty,
           sum(l.quantity * l.unit_price::float8) AS value
    FROM order_line l
    LEFT JOIN product p ON p.tenant_id = l.tenant_id AND p.product_id = l.product_id
    WHERE l.tenant_id = :tenant_id AND {rows}
      AND NOT EXISTS (
          SELECT FROM orders o
          WHERE o.id = l.order_pk AND o.tenant_id = :tenant_id AND o.placed_at > :as_of
      )
    GROUP BY 1, 2
),
cat AS (
    SELECT customer_pk,
           sum(qty) AS items,
           sum(value) AS item_value,
           count(category) AS n_categories,
           sum(qty) FILTER (WHERE category IS NOT NULL) AS known_items,
           max(qty) FILTER (WHERE category IS NOT NULL) AS top_items,
           sum(qty * ln(qty)) FILTER (WHERE category IS NOT NULL) AS q_ln_q
    FROM lines
    GROUP BY customer_pk
),
ev AS (
    SELECT customer_pk,
           date_part('epoch', min(occurred_at)) / 86400 AS first_t,
           count(*) FILTER (WHERE type = 'return') AS n_return,
           count(*) FILTER (WHERE type = 'refund') AS n_refund,
           count(*) FILTER (WHERE type = 'support_contact') AS n_contact,
           count(*) FILTER (WHERE recent AND type IN ('page_view', 'app_session')) AS n_session,
           count(*) FILTER (WHERE recent AND type = 'email_open') AS n_open,
           count(*) FILTER (WHERE recent AND type = 'email_click') AS n_click,
           count(*) FILTER (WHERE recent AND type = 'search') AS n_search,
           count(*) FILTER (WHERE recent AND type = 'add_to_cart') AS n_cart,
           count(*) FILTER (WHERE recent AND type = 'store_visit') AS n_visit,
           array_agg(floor(t)::int) FILTER (WHERE recent AND type = 'add_to_cart') AS cart_days
    FROM (
        SELECT customer_pk, type, occurred_at, t, t > :as_of_days - :window_days AS recent
        FROM (
            SELECT customer_pk, type, occurred_at, date_part('epoch', occurred_at) / 86400 AS t
            FROM event
            WHERE tenant_id = :tenant_id AND occurred_at <= :as_of AND {rows}
        ) e
    ) e
    GROUP BY customer_pk
),
tr AS (
    SELECT customer_pk, count(*) AS n, date_part('epoch', min(started_at)) / 86400 AS first_t
    FROM transcript
    WHERE tenant_id = :tenant_id AND started_at <= :as_of AND {rows}
    GROUP BY customer_pk
),
said AS (
    -- The newest model's reading of each review or transcript that it could score.
    SELECT DISTINCT ON (source_kind, source_pk)
           customer_pk, source_kind, score, label = 'negative' AS negative,
           details -> 'cues' -> 'refund' IS NOT NULL AS refund_cue,
           coalesce(details ->> 'churn_risk' = 'true', false) AS churn_cue,
           exp(-ln(2) * (:as_of_days - date_part('epoch', occurred_at) / 86400)
               / :half_life_days) AS weight
    FROM text_analysis
    WHERE tenant_id = :tenant_id AND status = 'ok' AND score IS NOT NULL
      AND occurred_at <= :as_of AND {rows}
    ORDER BY source_kind, source_pk, analyzed_at DESC, id DESC
),
sent AS (
    SELECT customer_pk,
           count(*) FILTER (WHERE source_kind = 'review') AS n_review,
           sum(weight * score) FILTER (WHERE source_kind = 'review')
               / nullif(sum(weight) FILTER (WHERE source_kind = 'review'), 0) AS review_decayed,
           avg(negative::int) FILTER (WHERE source_kind = 'review') AS review_negative,
           count(*) FILTER (WHERE source_kind = 'transcript') AS n_transcript,
           sum(weight * score) FILTER (WHERE source_kind = 'transcript')
               / nullif(sum(weight) FILTER (WHERE source_kind = 'transcript'), 0)
               AS transcript_decayed,
           avg(negative::int) FILTER (WHERE source_kind = 'transcript') AS transcript_negative,
           avg(refund_cue::int) FILTER (WHERE source_kind = 'transcript') AS refund_cue,
           avg(churn_cue::int) FILTER (WHERE source_kind = 'transcript') AS churn_cue
    FROM said
    GROUP BY customer_pk
)
"""

FROM_CLAUSE = """
FROM scoped s
LEFT JOIN ord ON ord.customer_pk = s.customer_pk
LEFT JOIN cat ON cat.customer_pk = s.customer_pk
LEFT JOIN ev ON ev.customer_pk = s.customer_pk
LEFT JOIN tr ON tr.customer_pk = s.customer_pk
LEFT JOIN sent ON sent.customer_pk = s.customer_pk
CROSS JOIN LATERAL (
    SELECT greatest(0, :as_of_days - least(s.signup_t, ord.first_t, ev.first_t, tr.first_t))
               AS tenure_days,
           coalesce(ord.n, 0) AS orders
) t
"""


def _per_order(count: str) -> str:
    return f"{count}::float8 / nullif(t.orders, 0)"


# A cart day counts as abandoned when no order follows on that day or the next.
_ABANDONED_CARTS = """CASE WHEN ev.cart_days IS NOT NULL THEN (
    SELECT count(DISTINCT d) FROM unnest(ev.cart_days) d
    WHERE (d = ANY(ord.order_days) OR d + 1 = ANY(ord.order_days)) IS NOT TRUE) END"""

# (name, SQL expression, description); an expression that yields NULL stores 0.
_FEATURES = (
    ("has_orders", "(t.orders > 0)::int", "1 if the customer ordered before as_of, else 0"),
    (
        "recency_days",
        "coalesce(:as_of_days - ord.last_t, t.tenure_days)",
        "days from the last order to as_of (tenure_days without orders)",
    ),
    ("frequency", "t.orders", "number of orders"),
    ("orders_365d", "ord.n_365d", "orders in the 365 days before as_of"),
    ("monetary", "ord.spend", "total spent over all orders"),
    ("avg_order_value", _per_order("ord.spend"), "mean order total"),
    ("avg_item_price", "cat.item_value / nullif(cat.items, 0)", "mean price paid per item"),
    ("items_per_order", _per_order("cat.items"), "mean number of items per order"),
    ("has_repeat_orders", "(t.orders >= 2)::int", "1 with two or more orders, else 0"),
    ("ipt_mean_days", "ord.ipt_mean", "mean days between consecutive orders"),
    ("ipt_std_days", "ord.ipt_std", "standard deviation of the days between orders"),
    ("tenure_days", "t.tenure_days", "days since first seen (signup or first activity)"),
    ("discount_share", _per_order("ord.n_discount"), "share of orders with a discount code"),
    ("return_rate", "ev.n_return::float8 / greatest(t.orders, 1)", "return events per order"),
    ("refund_rate", "ev.n_refund::float8 / greatest(t.orders, 1)", "refund events per order"),
    ("channel_web_share", _per_order("ord.n_web"), "share of orders placed on the web"),
    ("channel_app_share", _per_order("ord.n_app"), "share of orders placed in the app"),
    ("channel_store_share", _per_order("ord.n_store"), "share of orders placed in a store"),
    (
        "channel_other_share",
        _per_order("(t.orders - ord.n_web - ord.n_app - ord.n_store)"),
        "share of orders on another or no channel",
    ),
    ("weekend_share", _per_order("ord.n_weekend"), "share of orders on Saturday/Sunday (UTC)"),
    ("evening_share", _per_order("ord.n_evening"), "share of orders placed 18-24 h (UTC)"),
    ("hour_sin", "ord.hour_sin", "mean sine of the order hour on the 24-hour circle"),
    ("hour_cos", "ord.hour_cos", "mean cosine of the order hour on the 24-hour circle"),
    ("category_count", "cat.n_categories", "number of distinct product categories bought"),
    (
        "category_entropy",
        "ln(cat.known_items) - cat.q_ln_q / cat.known_items",
        "Shannon entropy (nats) of the items over categories",
    ),
    (
        "top_category_share",
        "cat.top_items / cat.known_items",
        "share of items in the customer's most bought category",
    ),
    ("sessions_90d", "ev.n_session", "page views and app sessions in the last 90 days"),
    ("email_opens_90d", "ev.n_open", "email opens in the last 90 days"),
    ("email_clicks_90d", "ev.n_click", "email clicks in the last 90 days"),
    (
        "email_click_rate_90d",
        "ev.n_click::float8 / nullif(greatest(ev.n_open, ev.n_click), 0)",
        "email clicks per open in the last 90 days (0..1)",
    ),
    ("searches_90d", "ev.n_search", "searches in the last 90 days"),
    ("add_to_carts_90d", "ev.n_cart", "add-to-cart events in the last 90 days"),
    (
        "abandoned_cart_days_90d",
        _ABANDONED_CARTS,
        "days in the last 90 with an add-to-cart and no order that day or the next",
    ),
    ("store_visits_90d", "ev.n_visit", "store visits in the last 90 days"),
    (
        "support_contacts_per_30d",
        "30 * (coalesce(ev.n_contact, 0) + coalesce(tr.n, 0))::float8"
        " / greatest(t.tenure_days, 30)",
        "support contacts (events and transcripts) per 30 days of tenure (at least 30)",
    ),
    ("has_review_sentiment", "(sent.n_review > 0)::int", "1 if any review has a sentiment score"),
    (
        "review_sentiment_decayed",
        "sent.review_decayed",
        "review sentiment (-1..1), mean weighted by a 90-day half-life",
    ),
    ("review_negative_share", "sent.review_negative", "share of scored reviews read negative"),
    ("has_transcript_sentiment", "(sent.n_transcript > 0)::int", "1 if any transcript has a score"),
    (
        "transcript_sentiment_decayed",
        "sent.transcript_decayed",
        "customer's sentiment in support transcripts (-1..1), 90-day half-life weights",
    ),
    (
        "transcript_negative_share",
        "sent.transcript_negative",
        "share of scored transcripts where the customer reads negative",
    ),
    (
        "transcript_refund_share",
        "sent.refund_cue",
        "share of scored transcripts where the customer asks for a refund",
    ),
    (
        "transcript_churn_share",
        "sent.churn_cue",
        "share of scored transcripts with cancel or competitor cues",
    ),
    # The purchase history that BG/NBD and Gamma-Gamma read: orders on one day are one
    # purchase, and days are whole UTC calendar days.
    ("purchase_days", "ord.n_days", "days with at least one order (orders of a day are one)"),
    (
        "first_purchase_age_days",
        "floor(:as_of_days) - floor(ord.first_t)",
        "whole days from the first order's day to as_of's day",
    ),
    (
        "last_purchase_age_days",
        "floor(:as_of_days) - floor(ord.last_t)",
        "whole days from the last order's day to as_of's day",
    ),
    (
        "repeat_day_spend",
        "ord.repeat_spend / nullif(ord.n_days - 1, 0)",
        "mean spend per purchase day after the first one (0 without repeat days)",
    ),
)

# Read from the customer's latest scores when the vector is read (see FeatureSet.scores).
_SCORES = (
    ("clv", "sc.clv", "predicted revenue over the CLV horizon (BG/NBD + Gamma-Gamma)"),
    ("p_alive", "sc.p_alive", "probability the customer is still active (BG/NBD)"),
)

V1 = FeatureSet(
    name="v1",
    features=tuple(Feature(name, description, sql) for name, sql, description in _FEATURES),
    ctes=CTES,
    from_clause=FROM_CLAUSE,
    params=MappingProxyType({"window_days": 90, "half_life_days": 90.0}),
    scores=tuple(Feature(name, description, sql) for name, sql, description in _SCORES),
)
