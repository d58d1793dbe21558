"""The released feature sets, by name."""

from __future__ import annotations

from services.segment.features.sets import FeatureSet, FeatureSetDoesNotExist
from services.segment.features.v1 import V1

DEFAULT_FEATURE_SET = "v1"
FEATURE_SETS: dict[str, FeatureSet] = {V1.name: V1}


def get_feature_set(name: str) -> FeatureSet:
    try:
        return FEATURE_SETS[name]
    except KeyError:
        known = ", ".join(sorted(FEATURE_SETS))
        raise FeatureSetDoesNotExist(f"no feature set {name!r} (known: {known})") from None


def describe_feature_set(name: str = DEFAULT_FEATURE_SET) -> list[dict[str, str]]:
    """Names and one-line descriptions for the API and dashboard, in stored order."""
    return get_feature_set(name).describe()
