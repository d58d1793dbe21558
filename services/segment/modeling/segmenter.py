"""`Segmenter`: scale, optionally reduce, cluster, label every customer, export as JSON."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClusterMixin  # type: ignore[import-untyped]
from sklearn.utils.validation import (  # type: ignore[import-untyped]
    check_is_fitted,
    validate_data,
)

from services.segment.modeling import artifact as fmt
from services.segment.modeling.algorithms import (
    DENSITY,
    SAMPLED,
    Partition,
    Settings,
    fit_partitions,
    sample_rows,
    settings_from_params,
)
from services.segment.modeling.assign import (
    NOISE,
    Assigner,
    fit_pca,
)
from services.segment.modeling.explain import explain_segments
from services.segment.modeling.identity import NOISE_KEY, KeyAssignment, assign_keys
from services.segment.modeling.preprocessing import (
    FeatureScaler,
    check_feature_names,
    column_indices,
)
from services.segment.modeling.projection import project_2d
from services.segment.modeling.selection import RULE, choose_k, score_labels
from services.segment.modeling.threads import limit_threads

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class Segmenter(ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """Customer segmentation; the package docstring says how each algorithm is fitted and
    how rows outside a fit sample are labelled.

    ``k``: segments wanted, or ``"auto"`` to choose in ``k_range`` (ignored by the density
    methods). ``sample_size``: rows for the quadratic algorithms and for the k search.
    ``score_sample_size``: rows for silhouette. ``pca_components``: as `assign.fit_pca`.
    ``log_features``: as `FeatureScaler`. ``noise``, ``eps``, ``min_samples``,
    ``min_cluster_size``, ``max_exemplars``: density methods only. ``n_init``: restarts of
    k-means and of the mixture. ``n_threads``: BLAS/OpenMP threads while working.
    ``features``: the names of the columns to segment on (None: all); the others are
    accepted and ignored, so a whole feature-set vector can be passed to `predict`.
    """

    def __init__(
        self,
        algorithm: str = "kmeans",
        k: int | str = "auto",
        k_range: tuple[int, int] = (2, 10),
        seed: int = 0,
        sample_size: int = 10_000,
        score_sample_size: int = 3_000,
        pca_components: int | float | None = None,
        log_features: str | Sequence[str] | None = "auto",
        noise: str = "keep",
        eps: float | None = None,
        min_samples: int | None = None,
        min_cluster_size: float = 0.02,
        n_init: int = 3,
        max_exemplars: int = 2_000,
        n_threads: int = 1,
        features: Sequence[str] | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.k = k
        self.k_range = k_range
        self.seed = seed
        self.sample_size = sample_size
        self.score_sample_size = score_sample_size
        self.pca_components = pca_components
        self.log_features = log_features
        self.noise = noise
        self.eps = eps
        self.min_samples = min_samples
        self.min_cluster_size = min_cluster_size
        self.n_init = n_init
        self.max_exemplars = max_exemplars
        self.n_threads = n_threads
        self.features = features

    def fit(
        self,
        X: ArrayLike,  # noqa: N803
        y: object = None,
        feature_names: Sequence[str] | None = None,
    ) -> Self:
        started = time.perf_counter()
        self.__dict__.pop("segment_keys_", None)  # keys belong to the previous fit
        data = np.asarray(validate_data(self, X, dtype=np.float64, ensure_min_samples=2))
        settings = settings_from_params(self.get_params())
        if feature_names is None and hasattr(self, "feature_names_in_"):
            feature_names = list(self.feature_names_in_)
        self.input_features_ = check_feature_names(feature_names, data.shape[1])
        self.feature_names_ = list(self.features or self.input_features_)
        self.columns_ = column_indices(self.input_features_, self.feature_names_)
        data = data[:, self.columns_]
        with limit_threads(self.n_threads):
            self.scaler_ = FeatureScaler(self.log_features)
            scaled = self.scaler_.fit_transform(data, feature_names=self.feature_names_)
            self.pca_ = fit_pca(scaled, self.pca_components, self.seed)
            z = scaled if self.pca_ is None else self.pca_.apply(scaled)
            fit_rows = sample_rows(len(z), self.sample_size, self.seed)
            partition, selection = self._fit_partition(z, fit_rows, settings)
            self._finish(data, z, partition)
            self.metrics_ = self._metrics(z, partition, selection, fit_rows, started)
        return self

    def predict(
        self,
        X: ArrayLike,  # noqa: N803
        feature_names: Sequence[str] | None = None,
    ) -> IntArray:
        """Segment labels (0 = the largest segment at training time; -1 = noise).
        ``feature_names``, when given, are checked against the columns given to `fit`."""
        data = self._inputs(X, feature_names)
        with limit_threads(self.n_threads):
            return self.assigner_.predict(self._embed(data))

    def explain(
        self,
        X: ArrayLike,  # noqa: N803
        *,
        revenue: ArrayLike | None = None,
        clv: ArrayLike | None = None,
        max_depth: int | None = None,
    ) -> dict[str, Any]:
        """Profiles, names, descriptions and surrogate-tree rules of the segments of ``X``
        (usually the training rows); see `explain.explain_segments`."""
        data = self._inputs(X)
        with limit_threads(self.n_threads):
            return explain_segments(
                data,
                self.scaler_.transform(data),
                self.assigner_.predict(self._embed(data)),
                self.feature_names_,
                revenue=None if revenue is None else np.asarray(revenue, dtype=np.float64),
                clv=None if clv is None else np.asarray(clv, dtype=np.float64),
                max_depth=max_depth,
                seed=self.seed,
            )

    def project(
        self,
        X: ArrayLike,  # noqa: N803
        *,
        sample_size: int = 3_000,
        tsne: bool = True,
    ) -> dict[str, Any]:
        """The dashboard's 2-D map; see `projection.project_2d`."""
        data = self._inputs(X)
        with limit_threads(self.n_threads):
            z = self._embed(data)
            labels = self.assigner_.predict(z)
            return project_2d(z, labels, sample_size=sample_size, seed=self.seed, tsne=tsne)

    def assign_keys(
        self,
        customer_ids: Sequence[Any],
        *,
        previous_members: Mapping[Any, str] | None = None,
        previous_centroids: Mapping[str, Sequence[float]] | None = None,
        used_keys: Sequence[str] = (),
    ) -> KeyAssignment:
        """Stable keys for the training rows' segments (``customer_ids`` in the order of
        the rows given to `fit`), kept in ``segment_keys_`` and the artifact from now on;
        see `identity.assign_keys`. ``previous_centroids`` are in original units, as
        `centroids_by_key` of the previous run gives them."""
        check_is_fitted(self, "labels_")
        if len(customer_ids) != len(self.labels_):
            raise ValueError("one customer id per training row is needed")
        assignment = assign_keys(
            self.labels_,
            list(customer_ids),
            self.scaler_.transform(self.centroids_),
            previous_members=previous_members,
            previous_centroids=(
                None
                if previous_centroids is None
                else {key: self._scaled_point(point) for key, point in previous_centroids.items()}
            ),
            used_keys=used_keys,
        )
        self.segment_keys_ = {label: assignment.keys[label] for label in range(self.n_segments_)}
        return assignment

    def predict_keys(self, X: ArrayLike) -> list[str]:  # noqa: N803
        check_is_fitted(self, "segment_keys_")
        return [self.segment_keys_.get(int(label), NOISE_KEY) for label in self.predict(X)]

    def centroids_by_key(self) -> dict[str, list[float]]:
        """Each segment's mean in original units, by key: the next run's
        ``previous_centroids``."""
        check_is_fitted(self, "segment_keys_")
        return {key: self.centroids_[label].tolist() for label, key in self.segment_keys_.items()}

    def to_artifact(self, *, data_window: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Everything needed to predict, as JSON-able values (see `artifact`);
        ``data_window`` (e.g. the features' ``as_of`` range) is recorded with it."""
        check_is_fitted(self)
        return fmt.dump(self, data_window)

    @classmethod
    def from_artifact(cls, artifact: Mapping[str, Any]) -> Segmenter:
        fmt.check_format(artifact)
        segmenter = cls(**fmt.params_from_json(artifact["params"]))
        fmt.restore(segmenter, artifact)
        return segmenter

    def _fit_partition(
        self, z: FloatArray, fit_rows: IntArray, settings: Settings
    ) -> tuple[Partition, dict[str, Any] | None]:
        """The final partition and, for ``k="auto"``, the record of how k was chosen."""
        sample = z[fit_rows]
        if self.algorithm in DENSITY:
            return fit_partitions(self.algorithm, sample, [], settings)[0], None
        if self.k != "auto":
            k = int(self.k)
            rows = sample if self.algorithm in SAMPLED else z
            return fit_partitions(self.algorithm, rows, [k], settings)[k], None
        low, high = self.k_range
        ks = list(range(low, min(high, len(sample) - 1) + 1)) or [min(low, len(sample))]
        partitions = fit_partitions(self.algorithm, sample, ks, settings)
        curve = [
            {"k": k, **self._scores(sample, part.assigner.predict(sample)), **part.stats}
            for k, part in partitions.items()
        ]
        k, ranked = choose_k(curve)
        selection = {"rule": RULE, "chosen_k": k, "n_rows": len(sample), "curve": ranked}
        if self.algorithm in SAMPLED or len(sample) == len(z):
            return partitions[k], selection
        return fit_partitions(self.algorithm, z, [k], settings)[k], selection

    def _finish(self, data: FloatArray, z: FloatArray, partition: Partition) -> None:
        """Label every row through the assigner, renumber segments by size (0 = largest,
        empty ones dropped), and keep each segment's mean in original units."""
        raw_labels = partition.assigner.predict(z)
        clusters, counts = np.unique(raw_labels[raw_labels != NOISE], return_counts=True)
        order = clusters[np.argsort(-counts, kind="stable")]
        self.assigner_: Assigner = partition.assigner.select(order.tolist())
        # Indexed by old label; the extra last entry catches NOISE (-1).
        renumber = np.full(int(raw_labels.max(initial=NOISE)) + 2, NOISE, dtype=np.int64)
        renumber[order] = np.arange(len(order))
        self.labels_ = renumber[raw_labels]
        self.n_segments_ = len(order)
        self.centroids_ = np.asarray(
            [data[self.labels_ == label].mean(axis=0) for label in range(self.n_segments_)],
            dtype=np.float64,
        ).reshape(self.n_segments_, data.shape[1])
        self.library_versions_ = fmt.library_versions()

    def _metrics(
        self,
        z: FloatArray,
        partition: Partition,
        selection: dict[str, Any] | None,
        fit_rows: IntArray,
        started: float,
    ) -> dict[str, Any]:
        sizes = np.bincount(self.labels_[self.labels_ != NOISE], minlength=self.n_segments_)
        return {
            **self._scores(z, self.labels_),
            **partition.stats,
            "n_segments": self.n_segments_,
            "segment_sizes": sizes.tolist(),
            "noise_share": float(np.mean(self.labels_ == NOISE)),
            "n_rows": len(z),
            "n_fit_rows": len(fit_rows) if self.algorithm in SAMPLED else len(z),
            "k_selection": selection,
            "fit_seconds": round(time.perf_counter() - started, 3),
        }

    def _scores(self, z: FloatArray, labels: IntArray) -> dict[str, float | None]:
        return score_labels(z, labels, sample_size=self.score_sample_size, seed=self.seed)

    def _inputs(
        self,
        X: ArrayLike,  # noqa: N803
        feature_names: Sequence[str] | None = None,
    ) -> FloatArray:
        """The columns segmented on, from rows laid out as the ones given to `fit`."""
        check_is_fitted(self)
        data = np.asarray(validate_data(self, X, dtype=np.float64, reset=False))
        if feature_names is not None and list(feature_names) != self.input_features_:
            raise ValueError(f"features must be {self.input_features_}, in that order")
        return data[:, self.columns_]

    def _embed(self, data: FloatArray) -> FloatArray:
        scaled = self.scaler_.transform(data)
        return scaled if self.pca_ is None else self.pca_.apply(scaled)

    def _scaled_point(self, point: Sequence[float]) -> FloatArray:
        return np.asarray(self.scaler_.transform(np.asarray([point], dtype=np.float64))[0])
