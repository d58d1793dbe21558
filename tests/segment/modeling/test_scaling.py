"""The feature scaler: which columns are logged, and round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.segment.modeling import FeatureScaler
from tests.segment.modeling.population import (
    FEATURES,
    FloatArray,
    IntArray,
)

pytestmark = pytest.mark.unit


def test_the_scaler_logs_skewed_amounts_and_round_trips(
    customers: tuple[FloatArray, IntArray],
) -> None:
    data, _ = customers
    scaler = FeatureScaler().fit(data, feature_names=FEATURES)
    restored = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))

    assert {"frequency", "monetary"} <= set(scaler.log_feature_names_)
    assert not {"discount_share", "sentiment"} & set(scaler.log_feature_names_)
    assert np.array_equal(restored.transform(data), scaler.transform(data))
    scaled = scaler.transform(data)
    assert np.allclose(scaled.mean(axis=0), 0)
    assert np.allclose(scaled.std(axis=0), 1)
    assert np.allclose(scaler.inverse_transform(scaled), data)
    refund = data[:1].copy()
    refund[0, FEATURES.index("monetary")] = -20.0
    assert np.all(np.isfinite(scaler.transform(refund)))


def test_a_few_extreme_customers_do_not_change_which_columns_are_logged(
    customers: tuple[FloatArray, IntArray],
) -> None:
    data, _ = customers
    column = FEATURES.index("discount_share")
    extreme = data.copy()
    # Six customers (well under 1 %) with a hundred times the largest value seen.
    extreme[:6, column] = 100 * data[:, column].max()
    plain = FeatureScaler().fit(data, feature_names=FEATURES)
    spiked = FeatureScaler().fit(extreme, feature_names=FEATURES)

    assert len(extreme) > 600
    assert "discount_share" not in plain.log_feature_names_
    assert spiked.log_feature_names_ == plain.log_feature_names_


def test_a_chosen_log_list_must_be_non_negative(customers: tuple[FloatArray, IntArray]) -> None:
    data, _ = customers
    scaler = FeatureScaler(log_features=["monetary", "sentiment"])
    with pytest.raises(ValueError, match="non-negative"):
        scaler.fit(data, feature_names=FEATURES)
