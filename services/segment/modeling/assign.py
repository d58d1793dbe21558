"""How a fitted segmentation assigns a customer: plain arrays plus a rule, nothing pickled.

Every algorithm ends in one of three assigners, and `Segmenter` labels even its training
rows through them, so a customer's segment depends only on their features: a refresh with
unchanged features never moves anyone, and a model loaded from its artifact runs the very
same arithmetic on the very same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sklearn.decomposition import PCA  # type: ignore[import-untyped]
from sklearn.metrics import (  # type: ignore[import-untyped]
    euclidean_distances,
    pairwise_distances_argmin_min,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
NOISE = -1


class Assigner(Protocol):
    @property
    def kind(self) -> str: ...

    def predict(self, z: FloatArray) -> IntArray: ...

    def select(self, order: Sequence[int]) -> Assigner:
        """Keep the clusters in ``order``, renumbered 0.. in that order."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LinearMap:
    """``(z - mean) @ components.T``: a fitted PCA without sklearn."""

    mean: FloatArray
    components: FloatArray
    explained_variance_ratio: FloatArray

    def apply(self, z: FloatArray) -> FloatArray:
        return np.asarray((z - self.mean) @ self.components.T, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "explained_variance_ratio": self.explained_variance_ratio.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearMap:
        return cls(
            _floats(data["mean"]),
            _floats(data["components"]),
            _floats(data["explained_variance_ratio"]),
        )


@dataclass(frozen=True)
class CentroidAssigner:
    """Nearest centroid: k-means, mini-batch k-means, and Ward (centroids of its clusters)."""

    centroids: FloatArray
    kind: str = "centroids"

    def predict(self, z: FloatArray) -> IntArray:
        nearest, _ = pairwise_distances_argmin_min(z, self.centroids)
        return np.asarray(nearest, dtype=np.int64)

    def select(self, order: Sequence[int]) -> CentroidAssigner:
        return CentroidAssigner(self.centroids[list(order)])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "centroids": self.centroids.tolist()}


@dataclass(frozen=True)
class MixtureAssigner:
    """Most probable component of a full-covariance Gaussian mixture."""

    weights: FloatArray
    means: FloatArray
    precisions_cholesky: FloatArray
    kind: str = "gaussian_mixture"

    def log_responsibility(self, z: FloatArray) -> FloatArray:
        """Unnormalised log P(component | z), as in sklearn's GaussianMixture."""
        n_features = z.shape[1]
        log_prob = np.empty((z.shape[0], len(self.weights)))
        for i, (mean, chol) in enumerate(zip(self.means, self.precisions_cholesky, strict=True)):
            y = z @ chol - mean @ chol
            log_det = np.sum(np.log(np.diag(chol)))
            log_prob[:, i] = (
                -0.5 * (n_features * np.log(2 * np.pi) + np.sum(y**2, axis=1)) + log_det
            )
        return log_prob + np.log(self.weights)

    def predict(self, z: FloatArray) -> IntArray:
        return np.asarray(self.log_responsibility(z).argmax(axis=1), dtype=np.int64)

    def select(self, order: Sequence[int]) -> MixtureAssigner:
        keep = list(order)
        return MixtureAssigner(self.weights[keep], self.means[keep], self.precisions_cholesky[keep])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "precisions_cholesky": self.precisions_cholesky.tolist(),
        }


@dataclass(frozen=True)
class ExemplarAssigner:
    """Density clusters: the label of the nearest exemplar (a DBSCAN core point or an
    HDBSCAN cluster member), provided the point lies within some exemplar's radius
    (DBSCAN's ``eps``; a member's HDBSCAN core distance, widened where exemplars were
    thinned out); otherwise noise (-1), or the nearest label anyway when
    ``noise_to_nearest``."""

    points: FloatArray
    labels: IntArray
    radii: FloatArray
    noise_to_nearest: bool
    kind: str = "exemplars"

    def predict(self, z: FloatArray) -> IntArray:
        result = np.full(len(z), NOISE, dtype=np.int64)
        if len(self.points) == 0:
            return result
        # Chunks keep the distance matrix near 64 MB whatever the population.
        step = max(1, 8_000_000 // len(self.points))
        for start in range(0, len(z), step):
            distance = euclidean_distances(z[start : start + step], self.points)
            labels = self.labels[distance.argmin(axis=1)]
            if not self.noise_to_nearest:
                labels = np.where((distance <= self.radii).any(axis=1), labels, NOISE)
            result[start : start + step] = labels
        return result

    def select(self, order: Sequence[int]) -> ExemplarAssigner:
        renumber = np.full(int(self.labels.max(initial=-1)) + 2, NOISE, dtype=np.int64)
        renumber[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
        labels = renumber[self.labels]
        keep = labels != NOISE
        return ExemplarAssigner(
            self.points[keep], labels[keep], self.radii[keep], self.noise_to_nearest
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "points": self.points.tolist(),
            "labels": self.labels.tolist(),
            "radii": self.radii.tolist(),
            "noise_to_nearest": self.noise_to_nearest,
        }


def fit_pca(scaled: FloatArray, n_components: float | None, seed: int) -> LinearMap | None:
    """PCA to ``n_components`` dimensions (an int), or to that share of the variance (a
    float below 1); None for no reduction."""
    if n_components is None:
        return None
    n_features = scaled.shape[1]
    if isinstance(n_components, int) and n_components > n_features:
        raise ValueError(f"pca_components={n_components} is more than n_features={n_features}")
    pca: Any = PCA(n_components=n_components, svd_solver="full", random_state=seed).fit(scaled)
    return LinearMap(pca.mean_, pca.components_, pca.explained_variance_ratio_)


def assigner_from_dict(data: dict[str, Any]) -> Assigner:
    kind = data["kind"]
    if kind == "centroids":
        return CentroidAssigner(_floats(data["centroids"]))
    if kind == "gaussian_mixture":
        return MixtureAssigner(
            _floats(data["weights"]), _floats(data["means"]), _floats(data["precisions_cholesky"])
        )
    if kind == "exemplars":
        return ExemplarAssigner(
            _floats(data["points"]),
            np.asarray(data["labels"], dtype=np.int64),
            _floats(data["radii"]),
            bool(data["noise_to_nearest"]),
        )
    raise ValueError(f"unknown assigner kind {kind!r}")


def _floats(values: Any) -> FloatArray:
    return np.asarray(values, dtype=np.float64)
