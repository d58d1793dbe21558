"""The released feature sets, by name."""

from __future__ import annotations

from services.segment.features.sets import FeatureSet, FeatureSetDoesNotExist
from services.segment.features.v1 import V1
from services.segment.features.v2 import V2

DEFAULT_FEATURE_SET = "v1"
FEATURE_SETS: dict[str, FeatureSet] = {V1.name: V1, V2.name: V2}

# What segments are made of, per feature set: behaviour that tells customer types apart.
# The rest of a feature set (flags, sin/cos of hours, per-channel detail) stays stored and
# shown, but adds more noise than signal to the distances; a run may name its own list.
MODEL_FEATURES: dict[str, list[str]] = {
    "v1": [
        "recency_days",
        "frequency",
        "orders_365d",
        "monetary",
        "avg_order_value",
        "avg_item_price",
        "discount_share",
        "tenure_days",
        "channel_store_share",
        "channel_app_share",
        "sessions_90d",
        "email_opens_90d",
        "email_clicks_90d",
        "searches_90d",
        "abandoned_cart_days_90d",
        "store_visits_90d",
        "support_contacts_per_30d",
        "review_sentiment_decayed",
        "transcript_sentiment_decayed",
    ],
}
# v2 adds how often offers convert the customer (services.segment.features.v2). The share
# of discount conversions is stored and profiled but not modelled: defined only for the few
# who converted, it split the demo's personas (ARI 0.77 with it, 0.955 without).
MODEL_FEATURES["v2"] = [*MODEL_FEATURES["v1"], "offer_conversion_rate"]


def get_feature_set(name: str) -> FeatureSet:
    try:
        return FEATURE_SETS[name]
    except KeyError:
        known = ", ".join(sorted(FEATURE_SETS))
        raise FeatureSetDoesNotExist(f"no feature set {name!r} (known: {known})") from None


def describe_feature_set(name: str = DEFAULT_FEATURE_SET) -> list[dict[str, str]]:
    """Names and one-line descriptions for the API and dashboard, in stored order."""
    return get_feature_set(name).describe()
