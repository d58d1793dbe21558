"""Feature set v2: v1 plus how the customer responds to offers, read from personalize's
decision log (``decision``) and feedback (``feedback``).

This closes the loop between the two services: a segmentation trained on v2 sees who
converts on offers at all, and who converts on discounts rather than on other kinds.

Only decisions and feedback made with the customer's marketing consent count
(``decision.personalised``): a customer who refused personalisation is not profiled by
their reactions. Exposures are the offers the decision log says were shown (the
storefront may or may not send impression events); clicks and conversions count once per
(decision, offer) however often they were reported. A customer never shown an offer gets
0 for every rate and ``has_offer_history`` = 0, as v1 does for customers without orders.
"""

from __future__ import annotations

from services.segment.features.sets import Feature, FeatureSet
from services.segment.features.v1 import V1

# Appended to v1's CTEs; the placeholders and parameters are v1's (see features.sql).
RESPONSE_CTES = """,
shown AS (
    SELECT customer_pk, count(*) AS n_decisions,
           sum(jsonb_array_length(offers)) AS n_shown
    FROM decision
    WHERE tenant_id = :tenant_id AND personalised AND created_at <= :as_of AND {rows}
    GROUP BY customer_pk
),
reacted AS (
    SELECT f.customer_pk,
           count(DISTINCT (f.decision_id, f.offer_id)) FILTER (WHERE f.kind = 'click')
               AS n_click,
           count(DISTINCT (f.decision_id, f.offer_id)) FILTER (WHERE f.kind = 'dismiss')
               AS n_dismiss,
           count(DISTINCT (f.decision_id, f.offer_id)) FILTER (WHERE f.kind = 'conversion')
               AS n_conversion,
           count(DISTINCT (f.decision_id, f.offer_id))
               FILTER (WHERE f.kind = 'conversion' AND o.kind = 'discount')
               AS n_discount_conversion,
           sum(f.value) FILTER (WHERE f.kind = 'conversion') AS conversion_value
    FROM (
        SELECT customer_pk, decision_id, offer_id, kind, value
        FROM feedback
        WHERE tenant_id = :tenant_id AND occurred_at <= :as_of AND {rows}
    ) f
    JOIN decision d ON d.decision_id = f.decision_id AND d.tenant_id = :tenant_id
    LEFT JOIN offer o ON o.tenant_id = :tenant_id AND o.offer_id = f.offer_id
    WHERE d.personalised
    GROUP BY f.customer_pk
)
"""

RESPONSE_JOINS = """
LEFT JOIN shown ON shown.customer_pk = s.customer_pk
LEFT JOIN reacted ON reacted.customer_pk = s.customer_pk
"""


def _per_shown(count: str) -> str:
    # A conversion attributed from an order may name an offer shown in an older decision:
    # a rate never passes 1. (least() skips NULLs: without exposures the rate must stay 0.)
    return f"least(1.0, coalesce({count}::float8 / nullif(shown.n_shown, 0), 0))"


_RESPONSE_FEATURES = (
    (
        "has_offer_history",
        "(shown.n_shown > 0)::int",
        "1 if personalised offers were shown to the customer, else 0",
    ),
    ("offers_shown", "shown.n_shown", "offers shown in personalised decisions (exposures)"),
    ("offer_click_rate", _per_shown("reacted.n_click"), "offers clicked per offer shown (0..1)"),
    (
        "offer_dismiss_rate",
        _per_shown("reacted.n_dismiss"),
        "offers dismissed per offer shown (0..1)",
    ),
    (
        "offer_conversion_rate",
        _per_shown("reacted.n_conversion"),
        "offers converted (bought with) per offer shown (0..1)",
    ),
    (
        "discount_conversion_share",
        "reacted.n_discount_conversion::float8 / nullif(reacted.n_conversion, 0)",
        "share of the customer's offer conversions that were on discount offers",
    ),
    (
        "offer_conversion_value",
        "reacted.conversion_value",
        "total value of the customer's offer conversions",
    ),
)

V2 = FeatureSet(
    name="v2",
    features=(
        *V1.features,
        *(Feature(name, description, sql) for name, sql, description in _RESPONSE_FEATURES),
    ),
    ctes=V1.ctes.rstrip() + RESPONSE_CTES,
    from_clause=V1.from_clause.rstrip() + RESPONSE_JOINS,
    params=V1.params,
    scores=V1.scores,
)
