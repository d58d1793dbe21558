"""The Redis keys of personalize's cache, defined once: the hot path, the worker that fills
the cache and erasure all build them here.

Everything cached about one customer lives under ``personalize:{tenant}:customer:{pk}``
(that key itself, or keys below it such as ``...:{pk}:offers:home``), so erasing a
customer is deleting that key and every key it prefixes. Keys hold internal ids only,
never the id a customer was sent with.
"""

from __future__ import annotations


def customer_key(tenant_id: int, customer_pk: int) -> str:
    return f"personalize:{tenant_id}:customer:{customer_pk}"


def customer_keys_pattern(tenant_id: int, customer_pk: int) -> str:
    """A SCAN pattern for the keys below the customer's key."""
    return f"{customer_key(tenant_id, customer_pk)}:*"
