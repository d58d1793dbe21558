"""scikit-learn's own estimator checks for the segmentation estimators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks  # type: ignore[import-untyped]

from services.segment.modeling import FeatureScaler, Segmenter

pytestmark = pytest.mark.unit


@parametrize_with_checks(  # type: ignore[untyped-decorator]
    [
        FeatureScaler(),
        Segmenter(),
        Segmenter(algorithm="gmm", k=3, pca_components=2),
        Segmenter(algorithm="hdbscan"),
    ]
)
def test_follows_the_scikit_learn_contract(estimator: Any, check: Callable[[Any], None]) -> None:
    check(estimator)
