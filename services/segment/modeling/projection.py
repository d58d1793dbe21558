"""The dashboard's 2-D map of the segments.

PCA to two dimensions is fitted on every customer (cheap, linear, and its axes are stored
so later customers can be placed on the same map); t-SNE, which shows cluster structure
better but costs O(n log n) per iteration and cannot place new points, runs on a seeded
sample of at most ``sample_size`` customers, for 500 iterations (half sklearn's default:
the clusters have settled by then, and it halves the time, ~11 s for 3,000 points on one
busy core). Both are returned for the same sample, as
``[x, y, label]`` triples without customer ids, so the map holds no personal data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.decomposition import PCA  # type: ignore[import-untyped]
from sklearn.manifold import TSNE  # type: ignore[import-untyped]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def project_2d(
    z: FloatArray,
    labels: IntArray,
    *,
    sample_size: int = 3_000,
    seed: int = 0,
    tsne: bool = True,
) -> dict[str, Any]:
    """``z``: the customers as the model sees them (scaled, after any PCA)."""
    rng = np.random.default_rng(seed)
    sample = np.arange(len(z))
    if len(z) > sample_size:
        sample = np.sort(rng.choice(len(z), size=sample_size, replace=False))
    n_components = min(2, z.shape[1], len(z))
    pca: Any = PCA(n_components=n_components, svd_solver="full", random_state=seed).fit(z)
    plane = _pad(pca.transform(z[sample]))
    result: dict[str, Any] = {
        "n_customers": len(z),
        "sample_size": len(sample),
        "pca": {
            "mean": pca.mean_.tolist(),
            "components": pca.components_.tolist(),
            # 0/0 when every customer is the same point: no axis explains anything.
            "explained_variance_ratio": np.nan_to_num(pca.explained_variance_ratio_).tolist(),
            "points": _points(plane, labels[sample]),
        },
        "tsne": None,
    }
    # t-SNE needs points to tell apart: on fewer than six distinct ones (a tiny shop, or
    # every customer alike) its embedding is 0/0, on which sklearn's Barnes-Hut tree
    # crashes the process (SIGSEGV), so the map is the PCA plane alone.
    if tsne and len(np.unique(z[sample], axis=0)) > 5:
        perplexity = float(min(30.0, (len(sample) - 1) / 3))
        embedded = TSNE(
            n_components=2, perplexity=perplexity, init="pca", max_iter=500, random_state=seed
        ).fit_transform(z[sample])
        result["tsne"] = {"perplexity": perplexity, "points": _points(embedded, labels[sample])}
    return result


def _pad(points: FloatArray) -> FloatArray:
    """Two columns even when the data had only one dimension."""
    if points.shape[1] == 2:
        return points
    return np.column_stack([points, np.zeros(len(points))])


def _points(xy: FloatArray, labels: IntArray) -> list[list[float]]:
    return [
        [round(float(x), 4), round(float(y), 4), int(label)]
        for (x, y), label in zip(xy, labels, strict=True)
    ]
