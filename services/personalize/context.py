"""The customer context that the contextual bandit (``linear_thompson``) reads.

A few numbers per customer, each scaled to about 0..1 so that one ridge prior suits them
all, computed by the worker from the customer's orders when it refreshes the customer's
cache entry, and held there as the ``ctx`` field (comma-separated). The hot path only
parses it. A visitor without a context (unknown, or no orders yet) reads as zeros: the
policy's intercept, i.e. what converts an average newcomer.

Customers without marketing consent get no context (they are never personalised).

The linear policy lives in the placement's policy run next to the segment bandit (its
state under ``"contextual"``) and learns from every personalised decision, whichever
algorithm made it: switching a placement to ``linear_thompson`` does not start cold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from services.personalize.modeling.contextual import LinearThompson

CONTEXTUAL_STATE = "contextual"  # the key of the linear policy in a policy run's state

# (name, SQL over the customer's orders ``o`` in a per-customer aggregate, meaning)
CONTEXT_FEATURES = (
    (
        "recency",
        "coalesce(exp(-date_part('epoch', now() - max(o.placed_at)) / 86400 / 90), 0)",
        "exp(-days since the last order / 90): 1 just bought, 0 never",
    ),
    ("frequency", "ln(1 + count(o.id)) / 3", "log orders / 3 (20 orders is 1.0)"),
    (
        "order_value",
        "coalesce(ln(1 + avg(o.total)::float8) / 6, 0)",
        "log mean order total / 6 (400 is 1.0)",
    ),
    (
        "discount_share",
        "coalesce(avg((o.discount_code IS NOT NULL)::int), 0)",
        "share of orders placed with a discount code",
    ),
)
CONTEXT_NAMES = tuple(name for name, _, _ in CONTEXT_FEATURES)
CONTEXT_WIDTH = len(CONTEXT_FEATURES)
ZERO_CONTEXT = (0.0,) * CONTEXT_WIDTH

# A lateral subquery yielding ``ctx`` (float8[]) for the customer ``c``.
CONTEXT_SQL = (
    "SELECT ARRAY["
    + ", ".join(f"CAST(({sql}) AS float8)" for _, sql, _ in CONTEXT_FEATURES)
    + "] AS ctx FROM orders o WHERE o.customer_pk = c.id AND o.tenant_id = c.tenant_id"
)


def format_context(values: Sequence[float]) -> str:
    return ",".join(f"{v:.4g}" for v in values)


def parse_context(raw: bytes | None) -> tuple[float, ...]:
    """A cached ``ctx`` field; zeros when absent or of another width (an older layout)."""
    if not raw:
        return ZERO_CONTEXT
    try:
        values = tuple(float(v) for v in raw.split(b","))
    except ValueError:
        return ZERO_CONTEXT
    return values if len(values) == CONTEXT_WIDTH else ZERO_CONTEXT


def contextual_policy(state: Mapping[str, Any] | None) -> LinearThompson:
    """The linear policy kept in a policy run's ``state``; the prior when there is none
    (or it was learnt over another context layout)."""
    data = (state or {}).get(CONTEXTUAL_STATE)
    if data is not None and int(data.get("n_features", -1)) == CONTEXT_WIDTH:
        return LinearThompson.from_dict(data)
    return LinearThompson().fit(np.zeros((0, CONTEXT_WIDTH)), [], [])
