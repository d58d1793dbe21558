"""A population of persona customers and a k-means segmentation of it, per test module."""

from __future__ import annotations

from typing import Any

import pytest

from services.segment.modeling import Segmenter
from tests.segment.modeling.population import FEATURES, FloatArray, IntArray, make_customers


@pytest.fixture(scope="module")
def customers() -> tuple[FloatArray, IntArray]:
    return make_customers(2400, seed=1)


@pytest.fixture(scope="module")
def fitted(customers: tuple[FloatArray, IntArray]) -> Segmenter:
    data, _ = customers
    return Segmenter(algorithm="kmeans", k=6, seed=3).fit(data, feature_names=FEATURES)


@pytest.fixture(scope="module")
def report(customers: tuple[FloatArray, IntArray], fitted: Segmenter) -> dict[str, Any]:
    data, _ = customers
    return fitted.explain(data, revenue=data[:, 2], clv=data[:, 2] * 1.5)
