"""Per-customer features, computed set-based in Postgres and loaded into numpy.

A full run computes every customer of a tenant, a refresh only the customers named (after
new activity); training loads the stored vectors as one matrix::

    compute_features(session, tenant_id=7)
    compute_features(session, tenant_id=7, customer_pks=[42])
    compute_features_in_parts(engine, tenant_id=7, parts=2)  # a full run on 2 connections
    matrix = load_matrix(session, tenant_id=7)
"""

from services.segment.features.matrix import FeatureMatrix, load_matrix
from services.segment.features.registry import (
    DEFAULT_FEATURE_SET,
    FEATURE_SETS,
    MODEL_FEATURES,
    describe_feature_set,
    get_feature_set,
)
from services.segment.features.repository import compute_features, compute_features_in_parts
from services.segment.features.sets import Feature, FeatureSet, FeatureSetDoesNotExist

__all__ = [
    "DEFAULT_FEATURE_SET",
    "FEATURE_SETS",
    "MODEL_FEATURES",
    "Feature",
    "FeatureMatrix",
    "FeatureSet",
    "FeatureSetDoesNotExist",
    "compute_features",
    "compute_features_in_parts",
    "describe_feature_set",
    "get_feature_set",
    "load_matrix",
]
