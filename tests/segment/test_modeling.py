"""Segmentation models on synthetic customers built like the demo shop's personas."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.metrics import adjusted_rand_score  # type: ignore[import-untyped]
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

from services.segment.modeling import NOISE, FeatureScaler, Segmenter
from services.segment.modeling.algorithms import fit_partitions
from services.segment.modeling.projection import project_2d

pytestmark = pytest.mark.unit

FEATURES = [
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "discount_share",
    "sentiment",
    "support_rate",
    "tenure_days",
]


@dataclass(frozen=True)
class Persona:
    share: float
    recency_days: tuple[float, float]
    orders: tuple[int, int]
    order_value: float
    discount_share: float
    sentiment: float
    support_rate: float
    tenure_days: tuple[float, float]


# Like segmenta/demo's personas, with the gaps between neighbours a little wider.
PERSONAS = {
    "champion": Persona(0.14, (0, 7), (20, 40), 180, 0.05, 0.7, 0.2, (400, 1500)),
    "loyal_regular": Persona(0.22, (10, 45), (4, 9), 60, 0.10, 0.4, 0.2, (365, 1800)),
    "bargain_hunter": Persona(0.20, (3, 45), (8, 18), 22, 0.90, 0.0, 0.3, (90, 1000)),
    "new_customer": Persona(0.16, (0, 28), (1, 1), 60, 0.50, 0.1, 0.2, (3, 30)),
    "lapsing_high_spender": Persona(0.14, (200, 480), (8, 20), 160, 0.05, -0.4, 1.5, (730, 2000)),
    "unhappy_returner": Persona(0.14, (10, 90), (3, 8), 70, 0.20, -0.8, 4.0, (120, 900)),
}
# Not in the default population: bought once or twice, long ago.
LAPSED_ONE_TIMER = Persona(0.2, (300, 600), (1, 2), 50, 0.3, 0.4, 0.2, (400, 1500))
EXPECTED_NAMES = {
    "champion": "Champions",
    "loyal_regular": "Loyal regulars",
    "bargain_hunter": "Bargain hunters",
    "new_customer": "New customers",
    "lapsing_high_spender": "Lapsing high spenders",
    "unhappy_returner": "Unhappy customers",
}
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def make_customers(
    n: int, seed: int, personas: list[str] | None = None
) -> tuple[FloatArray, IntArray]:
    """Feature rows, shuffled, and each row's persona index (into ``personas``)."""
    rng = np.random.default_rng(seed)
    known = PERSONAS | {"lapsed_one_timer": LAPSED_ONE_TIMER}
    chosen = [known[name] for name in personas or list(PERSONAS)]
    shares = np.array([p.share for p in chosen]) / sum(p.share for p in chosen)
    counts = np.floor(shares * n).astype(int)
    counts[0] += n - counts.sum()
    blocks = []
    for p, count in zip(chosen, counts, strict=True):
        recency = rng.uniform(*p.recency_days, count)
        orders = rng.integers(p.orders[0], p.orders[1] + 1, count).astype(float)
        order_value = p.order_value * rng.lognormal(0, 0.25, count)
        blocks.append(
            np.column_stack(
                [
                    recency,
                    orders,
                    orders * order_value,
                    order_value,
                    np.clip(rng.normal(p.discount_share, 0.07, count), 0, 1),
                    np.clip(rng.normal(p.sentiment, 0.15, count), -1, 1),
                    p.support_rate * rng.lognormal(0, 0.3, count),
                    np.maximum(rng.uniform(*p.tenure_days, count), recency),
                ]
            )
        )
    order = rng.permutation(n)
    return np.vstack(blocks)[order], np.repeat(np.arange(len(chosen)), counts)[order]


def perturbed(data: FloatArray, seed: int) -> FloatArray:
    """The same customers a few days later: a little older, spend and sentiment drift."""
    rng = np.random.default_rng(seed)
    changed = data.copy()
    changed[:, 0] += rng.uniform(0, 5, len(data))
    changed[:, 2] *= rng.lognormal(0, 0.03, len(data))
    changed[:, 5] = np.clip(changed[:, 5] + rng.normal(0, 0.03, len(data)), -1, 1)
    changed[:, 7] += 5
    return changed


def ari(truth: IntArray, labels: IntArray) -> float:
    return float(adjusted_rand_score(truth, labels))


def without_timing(artifact: dict[str, Any]) -> dict[str, Any]:
    return {**artifact, "metrics": {**artifact["metrics"], "fit_seconds": None}}


@pytest.fixture(scope="module")
def customers() -> tuple[FloatArray, IntArray]:
    return make_customers(2400, seed=1)


@pytest.fixture(scope="module")
def fitted(customers: tuple[FloatArray, IntArray]) -> Segmenter:
    data, _ = customers
    return Segmenter(algorithm="kmeans", k=6, seed=3).fit(data, feature_names=FEATURES)


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


@pytest.fixture(scope="module")
def report(customers: tuple[FloatArray, IntArray], fitted: Segmenter) -> dict[str, Any]:
    data, _ = customers
    return fitted.explain(data, revenue=data[:, 2], clv=data[:, 2] * 1.5)


def test_surrogate_rules_are_faithful_and_read_in_original_units(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter, report: dict[str, Any]
) -> None:
    _data, truth = customers
    assert report["surrogate"]["fidelity"] >= 0.95
    assert json.loads(json.dumps(report)) == report
    by_persona = segments_by_persona(report, fitted, truth)
    for segment in by_persona.values():
        assert segment["rules"]["recall"] >= 0.9
        assert segment["rules"]["precision"] >= 0.9
        assert segment["rules"]["paths"]
        assert all(p["text"] for p in segment["rules"]["paths"])
    lapsing = by_persona["lapsing_high_spender"]["rules"]["paths"][0]
    recency = next(c for c in lapsing["conditions"] if c["feature"] == "recency_days")
    # Between the other personas' last orders (at most 90 days) and the lapsers' (200+),
    # rounded to a value a person reads at a glance.
    assert 90 < recency["above"] <= 200
    assert recency["above"] % 10 == 0
    assert recency["at_most"] is None
    assert f"days since last order > {recency['above']:g}" in lapsing["text"]


def segments_by_persona(
    report: dict[str, Any], fitted: Segmenter, truth: IntArray
) -> dict[str, dict[str, Any]]:
    names = list(PERSONAS)
    result = {}
    for segment in report["segments"]:
        members = truth[fitted.labels_ == segment["label"]]
        result[names[int(np.bincount(members).argmax())]] = segment
    return result


def test_names_are_unique_and_match_the_standout_features(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter, report: dict[str, Any]
) -> None:
    _, truth = customers
    by_persona = segments_by_persona(report, fitted, truth)

    assert {persona: s["name"] for persona, s in by_persona.items()} == EXPECTED_NAMES
    lapsing = by_persona["lapsing_high_spender"]
    assert "Loyal" not in lapsing["name"]
    assert lapsing["profile"]["standouts"][0] == {
        "feature": "recency_days",
        "direction": "high",
        "lift": pytest.approx(lapsing["profile"]["features"]["recency_days"]["lift"]),
    }
    assert "high days since last order" in lapsing["description"]


def test_names_stay_unique_when_a_group_is_split(
    customers: tuple[FloatArray, IntArray],
) -> None:
    data, _ = customers
    split = Segmenter(k=9, seed=0).fit(data, feature_names=FEATURES)

    names = [segment["name"] for segment in split.explain(data)["segments"]]

    assert len(names) == 9
    assert len(set(names)) == 9


def test_profiles_give_sizes_lifts_and_value_shares(
    fitted: Segmenter, report: dict[str, Any]
) -> None:
    segments = report["segments"]
    assert [s["size"] for s in segments] == fitted.metrics_["segment_sizes"]
    assert sum(s["stats"]["share"] for s in segments) == pytest.approx(1.0)
    assert sum(s["stats"]["revenue_share"] for s in segments) == pytest.approx(1.0)
    assert sum(s["stats"]["clv_share"] for s in segments) == pytest.approx(1.0)
    champions = next(s for s in segments if s["name"] == "Champions")
    monetary = champions["profile"]["features"]["monetary"]
    assert monetary["mean"] > 3 * monetary["population_mean"]
    assert monetary["lift"] > 1
    assert champions["stats"]["revenue_share"] > champions["stats"]["share"]
    assert "revenue" in champions["description"]


def test_the_map_is_a_seeded_sample_of_labelled_points(
    customers: tuple[FloatArray, IntArray], fitted: Segmenter
) -> None:
    data, _ = customers
    first = fitted.project(data, sample_size=200)
    again = fitted.project(data, sample_size=200)

    assert first == again
    assert first["n_customers"] == len(data)
    assert first["sample_size"] == 200
    for view in (first["pca"], first["tsne"]):
        assert len(view["points"]) == 200
        assert {int(label) for _, _, label in view["points"]} <= set(range(fitted.n_segments_))
    assert len(first["pca"]["components"]) == 2
    json.dumps(first)


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


def test_a_negative_share_counts_against_sentiment(
    customers: tuple[FloatArray, IntArray],
) -> None:
    data, truth = customers
    names = ["review_negative_share" if name == "sentiment" else name for name in FEATURES]
    negative_share = data.copy()
    negative_share[:, FEATURES.index("sentiment")] = (1 - data[:, FEATURES.index("sentiment")]) / 2
    segmenter = Segmenter(k=6, seed=3).fit(negative_share, feature_names=names)

    report = segmenter.explain(negative_share)

    named = {s["name"] for s in segments_by_persona(report, segmenter, truth).values()}
    assert named == set(EXPECTED_NAMES.values())


def test_long_lapsed_occasional_buyers_are_not_called_loyal() -> None:
    personas = ["loyal_regular", "champion", "lapsed_one_timer", "new_customer"]
    data, truth = make_customers(1000, seed=2, personas=personas)
    segmenter = Segmenter(k=4, seed=0).fit(data, feature_names=FEATURES)

    report = segmenter.explain(data)

    names = {}
    for segment in report["segments"]:
        members = truth[segmenter.labels_ == segment["label"]]
        names[personas[int(np.bincount(members).argmax())]] = segment["name"]
    assert names["lapsed_one_timer"] == "Lapsing customers"
    assert names["loyal_regular"] == "Loyal regulars"


def test_a_map_of_customers_who_are_all_alike_is_drawn_without_tsne() -> None:
    # t-SNE's embedding of identical points is 0/0, on which sklearn's tree crashed the
    # runs worker's process (SIGSEGV) for a shop whose customers had the same features.
    same = np.ones((40, 3))
    drawn = project_2d(same, np.zeros(40, dtype=np.int64), seed=1)
    assert drawn["tsne"] is None
    assert drawn["pca"]["explained_variance_ratio"] == [0.0, 0.0]
    assert len(drawn["pca"]["points"]) == 40
    distinct = np.random.default_rng(1).normal(size=(40, 3))
    assert project_2d(distinct, np.zeros(40, dtype=np.int64), seed=1)["tsne"] is not None


def test_a_rule_path_that_catches_nobody_is_left_out_of_the_rule() -> None:
    from services.segment.modeling.rules import _scored
    from shared.contracts.rules import RuleCondition, RulePath

    names = ["avg_order_value", "monetary"]
    data = np.asarray([[0.0, 0.0], [0.0, 0.0], [40.0, 80.0], [50.0, 50.0]])
    members = np.asarray([True, True, False, False])
    never = RuleCondition(feature="avg_order_value", at_most=0.0, text="has never ordered")
    ordered = RuleCondition(feature="avg_order_value", above=0.0, text="has ordered")
    no_spend = RuleCondition(feature="monetary", at_most=0.0, text="has never ordered")
    real = RulePath(text="has never ordered", conditions=(never,))
    empty = RulePath(text="has ordered and has never ordered", conditions=(ordered, no_spend))

    scored = _scored([real, empty], members, data, names, "surrogate")

    assert scored["paths"] == [real]
    assert (scored["coverage"], scored["precision"]) == (1.0, 1.0)
