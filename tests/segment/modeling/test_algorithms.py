"""Each clustering algorithm on persona customers: recovery, choice of k, artifacts,
seeds, noise and parameters."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

from services.segment.modeling import NOISE, Segmenter
from services.segment.modeling.algorithms import fit_partitions
from tests.segment.modeling.population import (
    FEATURES,
    FloatArray,
    IntArray,
    ari,
    make_customers,
    without_timing,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "algorithm", ["kmeans", "minibatch_kmeans", "gmm", "agglomerative", "dbscan", "hdbscan"]
)
def test_each_algorithm_recovers_the_behaviour_groups(
    customers: tuple[FloatArray, IntArray], algorithm: str
) -> None:
    data, truth = customers
    segmenter = Segmenter(algorithm=algorithm, k=6, seed=0).fit(data, feature_names=FEATURES)

    score = ari(truth, segmenter.labels_)
    assert score >= 0.8, f"{algorithm}: adjusted Rand index {score:.3f}"
    assert segmenter.n_segments_ == 6
    assert np.array_equal(segmenter.predict(data), segmenter.labels_)
    fresh, fresh_truth = make_customers(600, seed=11)
    assert ari(fresh_truth, segmenter.predict(fresh)) >= 0.8


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm", "agglomerative"])
def test_auto_k_finds_the_number_of_groups_and_keeps_the_curve(
    customers: tuple[FloatArray, IntArray], algorithm: str
) -> None:
    data, truth = customers[0][:1200], customers[1][:1200]
    segmenter = Segmenter(algorithm=algorithm, k="auto", seed=0).fit(data, feature_names=FEATURES)

    selection = segmenter.metrics_["k_selection"]
    assert segmenter.n_segments_ == selection["chosen_k"] == 6
    assert [point["k"] for point in selection["curve"]] == list(range(2, 11))
    best = min(selection["curve"], key=lambda point: point["mean_rank"])
    assert best["k"] == 6
    assert "silhouette" in best["ranks"]
    assert ("bic" in best["ranks"]) == (algorithm == "gmm")
    assert "mean rank" in selection["rule"]
    assert ari(truth, segmenter.labels_) >= 0.9


@pytest.mark.parametrize(
    "params",
    [
        {"algorithm": "kmeans", "k": 6},
        {"algorithm": "gmm", "k": 6, "pca_components": 5},
        {"algorithm": "agglomerative", "k": 6, "sample_size": 800},
        {"algorithm": "hdbscan", "sample_size": 1500},
        {"algorithm": "dbscan", "noise": "nearest", "max_exemplars": 300},
    ],
)
def test_artifact_round_trip_predicts_identically(
    customers: tuple[FloatArray, IntArray], params: dict[str, Any]
) -> None:
    data, _ = customers
    segmenter = Segmenter(seed=5, **params).fit(data, feature_names=FEATURES)
    stored = json.loads(json.dumps(segmenter.to_artifact()))

    loaded = Segmenter.from_artifact(stored)

    fresh, _ = make_customers(500, seed=21)
    assert np.array_equal(loaded.predict(fresh), segmenter.predict(fresh))
    assert np.array_equal(loaded.predict(data), segmenter.labels_)
    assert stored["feature_names"] == FEATURES
    assert stored["params"]["algorithm"] == params["algorithm"]
    assert {"numpy", "scipy", "scikit-learn", "python"} <= set(stored["library_versions"])
    assert stored["metrics"]["n_segments"] == segmenter.n_segments_


def test_artifact_refuses_another_format(fitted: Segmenter) -> None:
    artifact = fitted.to_artifact()
    with pytest.raises(ValueError, match="version"):
        Segmenter.from_artifact({**artifact, "format_version": 99})


@pytest.mark.parametrize("algorithm", ["minibatch_kmeans", "gmm", "hdbscan"])
def test_fits_are_reproducible_from_the_seed(
    customers: tuple[FloatArray, IntArray], algorithm: str
) -> None:
    data, _ = customers
    params: dict[str, Any] = {"algorithm": algorithm, "k": 6, "seed": 42, "sample_size": 1000}
    first = Segmenter(**params).fit(data, feature_names=FEATURES)
    second = Segmenter(**params).fit(data, feature_names=FEATURES)

    assert without_timing(first.to_artifact()) == without_timing(second.to_artifact())


def test_ward_on_a_sample_assigns_every_row(customers: tuple[FloatArray, IntArray]) -> None:
    data, truth = customers
    segmenter = Segmenter(algorithm="agglomerative", k=6, sample_size=400, seed=0)
    segmenter.fit(data, feature_names=FEATURES)

    assert segmenter.metrics_["n_fit_rows"] == 400
    assert segmenter.labels_.shape == (len(data),)
    assert np.all(segmenter.labels_ >= 0)
    assert sum(segmenter.metrics_["segment_sizes"]) == len(data)
    assert ari(truth, segmenter.labels_) >= 0.8


def test_density_outliers_are_noise_unless_asked_otherwise(
    customers: tuple[FloatArray, IntArray],
) -> None:
    data, _ = customers
    outliers = data[:5] * np.array([1, 50, 50, 50, 1, 1, 1, 1])
    with_outliers = np.vstack([data, outliers])

    keep = Segmenter(algorithm="dbscan", seed=0).fit(with_outliers, feature_names=FEATURES)
    nearest = Segmenter(algorithm="dbscan", noise="nearest", seed=0).fit(with_outliers)

    assert np.all(keep.labels_[-5:] == NOISE)
    assert keep.metrics_["noise_share"] > 0
    assert np.all(nearest.labels_ >= 0)
    report = keep.explain(with_outliers)
    assert [s["name"] for s in report["segments"] if s["label"] == NOISE] == ["Outliers"]


def test_labels_are_numbered_by_size(fitted: Segmenter) -> None:
    sizes = fitted.metrics_["segment_sizes"]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes == np.bincount(fitted.labels_).tolist()


def test_pca_before_clustering_keeps_the_groups(customers: tuple[FloatArray, IntArray]) -> None:
    data, truth = customers
    segmenter = Segmenter(k=6, pca_components=0.9, seed=0).fit(data, feature_names=FEATURES)

    pca = segmenter.to_artifact()["pca"]
    assert 1 <= len(pca["components"]) < len(FEATURES)
    assert sum(pca["explained_variance_ratio"]) >= 0.9
    assert ari(truth, segmenter.labels_) >= 0.8


def test_metrics_report_cluster_quality(fitted: Segmenter) -> None:
    metrics = fitted.metrics_
    assert metrics["silhouette"] > 0.5
    assert metrics["calinski_harabasz"] > 0
    assert 0 < metrics["davies_bouldin"] < 1
    assert metrics["n_rows"] == metrics["n_fit_rows"] == 2400
    json.dumps(metrics)


def test_predict_refuses_features_in_another_order(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter
) -> None:
    data, _ = customers
    with pytest.raises(ValueError, match="in that order"):
        fitted.predict(data[:, ::-1], feature_names=FEATURES[::-1])
    with pytest.raises(ValueError, match="features"):
        fitted.predict(data[:, :3])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"algorithm": "spectral"}, "algorithm must be one of"),
        ({"k": 0}, "k must be"),
        ({"noise": "drop"}, "noise must be"),
        ({"k_range": (1, 5)}, "k_range"),
    ],
)
def test_bad_parameters_are_named(
    customers: tuple[FloatArray, IntArray], params: dict[str, Any], message: str
) -> None:
    data, _ = customers
    with pytest.raises(ValueError, match=message):
        Segmenter(**params).fit(data[:50])


def test_fitting_caps_the_thread_pools(
    customers: tuple[FloatArray, IntArray], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = customers
    threads_seen: list[set[int]] = []

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads_seen.append({pool["num_threads"] for pool in threadpool_info()})
        return fit_partitions(*args, **kwargs)

    monkeypatch.setattr("services.segment.modeling.segmenter.fit_partitions", watched)
    Segmenter(k=3, n_threads=1).fit(data[:300])

    assert threads_seen == [{1}]


def test_segments_on_chosen_columns_of_a_wider_feature_vector(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter
) -> None:
    data, _ = customers
    noise = np.random.default_rng(3).normal(size=(len(data), 2))
    wide = np.column_stack([noise[:, 0], data, noise[:, 1]])
    wide_names = ["hour_sin", *FEATURES, "hour_cos"]

    segmenter = Segmenter(k=6, seed=3, features=FEATURES).fit(wide, feature_names=wide_names)
    loaded = Segmenter.from_artifact(json.loads(json.dumps(segmenter.to_artifact())))

    assert np.array_equal(segmenter.labels_, fitted.labels_)
    assert np.array_equal(loaded.predict(wide[:50]), fitted.predict(data[:50]))
    assert [s["name"] for s in loaded.explain(wide)["segments"]] == [
        s["name"] for s in fitted.explain(data)["segments"]
    ]
    with pytest.raises(ValueError, match="unknown features"):
        Segmenter(features=["clv"]).fit(wide, feature_names=wide_names)
