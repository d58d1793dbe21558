"""Per-customer features, computed set-based in Postgres and loaded into numpy.

A full run computes every customer of a tenant, a refresh only the customers named (after
new activity); training loads the stored vectors as one matrix::

    compute_features(session, tenant_id=7)
    compute_features(session, tenant_id=7, customer_pks=[42])
    matrix = load_matrix(session, tenant_id=7)
"""

from services.segment.features.matrix import FeatureMatrix, load_matrix
from services.segment.features.registry import (
    DEFAULT_FEATURE_SET,
    FEATURE_SETS,
    describe_feature_set,
    get_feature_set,
)
from services.segment.features.repository import compute_features
from services.segment.features.sets import Feature, FeatureSet, FeatureSetDoesNotExist

__all__ = [
    "DEFAULT_FEATURE_SET",
    "FEATURE_SETS",
    "Feature",
    "FeatureMatrix",
    "FeatureSet",
    "FeatureSetDoesNotExist",
    "compute_features",
    "describe_feature_set",
    "get_feature_set",
    "load_matrix",
]
