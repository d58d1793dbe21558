"""Fitting each clustering algorithm and reducing it to an `Assigner`.

``fit_partitions`` fits one partition per requested k (density methods find their own
number of clusters and return one, under key 0). Ward builds its merge tree once and cuts
it at every k, which is what makes ``k="auto"`` affordable for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.cluster.hierarchy import cut_tree, linkage  # type: ignore[import-untyped]
from sklearn.cluster import (  # type: ignore[import-untyped]
    DBSCAN,
    HDBSCAN,
    KMeans,
    MiniBatchKMeans,
)
from sklearn.metrics import pairwise_distances_argmin_min  # type: ignore[import-untyped]
from sklearn.mixture import GaussianMixture  # type: ignore[import-untyped]
from sklearn.neighbors import NearestNeighbors  # type: ignore[import-untyped]

from services.segment.modeling.assign import (
    Assigner,
    CentroidAssigner,
    ExemplarAssigner,
    MixtureAssigner,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Algorithm = Literal["kmeans", "minibatch_kmeans", "gmm", "agglomerative", "dbscan", "hdbscan"]
ALGORITHMS: tuple[str, ...] = (
    "kmeans",
    "minibatch_kmeans",
    "gmm",
    "agglomerative",
    "dbscan",
    "hdbscan",
)
# Quadratic in time or memory: fitted on a sample, the other rows assigned afterwards.
SAMPLED = frozenset({"agglomerative", "dbscan", "hdbscan"})
DENSITY = frozenset({"dbscan", "hdbscan"})


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    n_init: int = 3
    eps: float | None = None
    min_samples: int | None = None
    min_cluster_size: float = 0.02
    noise_to_nearest: bool = False
    max_exemplars: int = 2000


@dataclass(frozen=True)
class Partition:
    assigner: Assigner
    stats: dict[str, float] = field(default_factory=dict)


def settings_from_params(params: Mapping[str, Any]) -> Settings:
    """`Segmenter`'s parameters, checked, as the algorithms need them."""
    if params["algorithm"] not in ALGORITHMS:
        raise ValueError(
            f"algorithm must be one of {', '.join(ALGORITHMS)}, not {params['algorithm']!r}"
        )
    k = params["k"]
    if not (k == "auto" or (isinstance(k, int | np.integer) and k >= 1)):
        raise ValueError(f"k must be a positive integer or 'auto', not {k!r}")
    if params["noise"] not in ("keep", "nearest"):
        raise ValueError(f"noise must be 'keep' or 'nearest', not {params['noise']!r}")
    low, high = params["k_range"]
    if not 2 <= low <= high:
        raise ValueError(f"k_range must be (low, high) with 2 <= low <= high, not {(low, high)}")
    if params["n_threads"] < 1 or min(params["sample_size"], params["score_sample_size"]) < 2:
        raise ValueError("n_threads must be >= 1 and the sample sizes >= 2")
    return Settings(
        seed=params["seed"],
        n_init=params["n_init"],
        eps=params["eps"],
        min_samples=params["min_samples"],
        min_cluster_size=params["min_cluster_size"],
        noise_to_nearest=params["noise"] == "nearest",
        max_exemplars=params["max_exemplars"],
    )


def fit_partitions(
    algorithm: str,
    z: FloatArray,
    ks: Sequence[int],
    settings: Settings,
) -> dict[int, Partition]:
    if algorithm == "agglomerative":
        return _fit_ward(z, ks)
    if algorithm == "dbscan":
        return {0: _fit_dbscan(z, settings)}
    if algorithm == "hdbscan":
        return {0: _fit_hdbscan(z, settings)}
    if algorithm in ("kmeans", "minibatch_kmeans", "gmm"):
        return {k: _fit_flat(algorithm, z, k, settings) for k in ks}
    raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


def _fit_flat(algorithm: str, z: FloatArray, k: int, settings: Settings) -> Partition:
    if algorithm == "gmm":
        # Features constant inside a group (every new customer has exactly one order)
        # make a component's covariance singular: regularise more than sklearn's 1e-6.
        mixture: Any = GaussianMixture(
            n_components=k, n_init=settings.n_init, reg_covar=1e-4, random_state=settings.seed
        ).fit(z)
        assigner = MixtureAssigner(
            mixture.weights_.astype(np.float64),
            mixture.means_.astype(np.float64),
            mixture.precisions_cholesky_.astype(np.float64),
        )
        return Partition(assigner, {"bic": float(mixture.bic(z))})
    if algorithm == "minibatch_kmeans":
        model: Any = MiniBatchKMeans(
            n_clusters=k, n_init=settings.n_init, batch_size=1024, random_state=settings.seed
        )
    else:
        model = KMeans(n_clusters=k, n_init=settings.n_init, random_state=settings.seed)
    model.fit(z)
    return Partition(CentroidAssigner(model.cluster_centers_.astype(np.float64)))


def _fit_ward(z: FloatArray, ks: Sequence[int]) -> dict[int, Partition]:
    cuts = cut_tree(linkage(z, method="ward"), n_clusters=list(ks))
    partitions = {}
    for column, k in enumerate(ks):
        labels = cuts[:, column]
        centroids = np.stack([z[labels == label].mean(axis=0) for label in range(k)])
        partitions[k] = Partition(CentroidAssigner(centroids))
    return partitions


def _fit_dbscan(z: FloatArray, settings: Settings) -> Partition:
    min_samples = settings.min_samples or default_min_samples(z)
    eps = settings.eps if settings.eps is not None else auto_eps(z, min_samples)
    model: Any = DBSCAN(eps=eps, min_samples=min_samples).fit(z)
    core = np.asarray(model.core_sample_indices_, dtype=np.int64)
    labels = np.asarray(model.labels_, dtype=np.int64)[core]
    assigner = _thinned(z[core], labels, np.full(len(core), eps), settings)
    return Partition(assigner, {"eps": float(eps), "min_samples": float(min_samples)})


def _fit_hdbscan(z: FloatArray, settings: Settings) -> Partition:
    size = settings.min_cluster_size
    min_cluster_size = max(5, round(size * len(z))) if size < 1 else int(size)
    min_samples = settings.min_samples or min(min_cluster_size, default_min_samples(z))
    model: Any = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True)
    labels = np.asarray(model.fit(z).labels_, dtype=np.int64)
    members = np.flatnonzero(labels >= 0)
    # A member's core distance is the radius of its dense neighbourhood: a new point inside
    # it would have joined that member's cluster had it been in the sample.
    core_distance = np.zeros(0)
    if len(members):
        neighbours: Any = NearestNeighbors(n_neighbors=min(min_samples, len(z))).fit(z)
        core_distance = neighbours.kneighbors(z[members])[0][:, -1]
    assigner = _thinned(z[members], labels[members], core_distance, settings)
    stats = {"min_cluster_size": float(min_cluster_size), "min_samples": float(min_samples)}
    return Partition(assigner, stats)


def sample_rows(n_rows: int, size: int, seed: int) -> IntArray:
    """Sorted indices of a seeded sample of ``size`` rows (all rows when fewer)."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))


def default_min_samples(z: FloatArray) -> int:
    """Twice the dimension (Sander et al., 1998), at least 5."""
    return max(5, 2 * int(z.shape[1]))


def auto_eps(z: FloatArray, min_samples: int) -> float:
    """DBSCAN's radius from the data: a high quantile of each point's distance to its
    ``min_samples``-th neighbour, so that nearly every point inside a group is core while
    the sparse space between groups is not."""
    neighbours: Any = NearestNeighbors(n_neighbors=min(min_samples, len(z))).fit(z)
    distances = neighbours.kneighbors(z)[0][:, -1]
    return float(np.quantile(distances, 0.9))


def _thinned(
    points: FloatArray, labels: IntArray, radii: FloatArray, settings: Settings
) -> ExemplarAssigner:
    """At most about ``max_exemplars`` exemplars, each cluster keeping its share (and at
    least one), so artifacts stay small. Each dropped exemplar's neighbourhood stays
    covered: the nearest kept exemplar of its cluster widens its radius to reach around
    it (triangle inequality)."""
    if len(points) <= settings.max_exemplars:
        return ExemplarAssigner(points, labels, radii, settings.noise_to_nearest)
    rng = np.random.default_rng(settings.seed)
    ratio = settings.max_exemplars / len(points)
    radii = radii.copy()
    kept = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen = rng.choice(len(members), size=max(1, round(len(members) * ratio)), replace=False)
        keep, drop = members[chosen], np.delete(members, chosen)
        if len(drop):
            nearest, distance = pairwise_distances_argmin_min(points[drop], points[keep])
            np.maximum.at(radii, keep[nearest], distance + radii[drop])
        kept.append(keep)
    index = np.sort(np.concatenate(kept))
    return ExemplarAssigner(points[index], labels[index], radii[index], settings.noise_to_nearest)
