"""Segment keys across retrains: the same group keeps its key, a new group gets a new one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.segment.modeling import Segmenter
from tests.segment.modeling.population import (
    FEATURES,
    PERSONAS,
    FloatArray,
    IntArray,
    make_customers,
    perturbed,
)

pytestmark = pytest.mark.unit


def keys_by_persona(keys: list[str], truth: IntArray) -> dict[int, str]:
    """Each persona's most common key."""
    result = {}
    for persona in np.unique(truth):
        values, counts = np.unique(np.asarray(keys)[truth == persona], return_counts=True)
        result[int(persona)] = str(values[np.argmax(counts)])
    return result


def test_a_retrain_keeps_the_keys_of_the_same_groups(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter
) -> None:
    data, truth = customers
    ids = [f"c-{i:05d}" for i in range(len(data))]
    first = fitted.assign_keys(ids)
    first_keys = first.key_of(fitted.labels_)
    # Next week: 5 % of customers gone, 300 new ones, everyone else drifted a little.
    stay = np.random.default_rng(8).random(len(data)) > 0.05
    newcomers, newcomer_truth = make_customers(300, seed=9)
    next_data = np.vstack([perturbed(data[stay], seed=4), newcomers])
    next_ids = [cid for cid, kept in zip(ids, stay, strict=True) if kept]
    next_ids += [f"n-{i:05d}" for i in range(300)]
    retrained = Segmenter(algorithm="kmeans", k=6, seed=99).fit(next_data, feature_names=FEATURES)

    second = retrained.assign_keys(
        next_ids, previous_members=dict(zip(ids, first_keys, strict=True)), used_keys=first_keys
    )

    next_truth = np.concatenate([truth[stay], newcomer_truth])
    assert keys_by_persona(second.key_of(retrained.labels_), next_truth) == keys_by_persona(
        first_keys, truth
    )
    assert set(second.matched_by.values()) == {"members"}
    # Churn and newcomers alone cap the overlap near 0.84 here.
    assert all(value is not None and value > 0.75 for value in second.jaccard.values())
    assert second.adjusted_rand_index is not None
    assert second.adjusted_rand_index > 0.95
    assert second.retired_keys == []


def test_keys_fall_back_to_centroids_without_previous_members(
    customers: tuple[FloatArray, IntArray],
) -> None:
    data, truth = customers
    ids = list(range(len(data)))
    first = Segmenter(k=6, seed=0).fit(data, feature_names=FEATURES)
    first_keys = first.assign_keys(ids).key_of(first.labels_)
    previous_run = Segmenter.from_artifact(json.loads(json.dumps(first.to_artifact())))
    retrained = Segmenter(algorithm="gmm", k=6, seed=1).fit(
        perturbed(data, seed=5), feature_names=FEATURES
    )

    second = retrained.assign_keys(ids, previous_centroids=previous_run.centroids_by_key())

    assert keys_by_persona(second.key_of(retrained.labels_), truth) == keys_by_persona(
        first_keys, truth
    )
    assert set(second.matched_by.values()) == {"centroid"}
    assert second.adjusted_rand_index is None
    fresh, _ = make_customers(300, seed=12)
    assert retrained.predict_keys(fresh) == previous_run.predict_keys(fresh)


def test_a_new_group_gets_a_key_never_used_before(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter
) -> None:
    data, truth = customers
    without_unhappy = truth != list(PERSONAS).index("unhappy_returner")
    ids = np.arange(len(data))
    five = Segmenter(k=5, seed=0).fit(data[without_unhappy], feature_names=FEATURES)
    first = five.assign_keys(ids[without_unhappy].tolist())
    previous = dict(zip(ids[without_unhappy].tolist(), first.key_of(five.labels_), strict=True))

    second = fitted.assign_keys(
        ids.tolist(), previous_members=previous, used_keys=[*first.keys.values(), "seg-9"]
    )

    unhappy_key = keys_by_persona(second.key_of(fitted.labels_), truth)[5]
    assert unhappy_key == "seg-10"
    assert second.matched_by[unhappy_key] == "new"
    assert second.jaccard[unhappy_key] is None
    assert sorted(k for k, how in second.matched_by.items() if how == "members") == sorted(
        set(first.keys.values()) - {"noise"}
    )
