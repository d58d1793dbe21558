"""Quality scores of a partition and the rule that picks k.

The rule: fit every k in the range, rank the ks by each criterion (silhouette and
Calinski-Harabasz higher is better; Davies-Bouldin and, for mixtures, BIC lower is better),
and take the k with the best mean rank, the smaller k on a tie. A vote over criteria is
steadier than any one of them: silhouette alone often prefers two big clusters, BIC alone
keeps adding components to fit non-Gaussian tails, Calinski-Harabasz favours many small
equal clusters. Every k's scores and ranks are kept so a reader can check the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import (  # type: ignore[import-untyped]
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
# criterion -> True when higher is better
CRITERIA: dict[str, bool] = {
    "silhouette": True,
    "calinski_harabasz": True,
    "davies_bouldin": False,
    "bic": False,
}
RULE = (
    "k with the best mean rank over silhouette (on a sample), Calinski-Harabasz, "
    "Davies-Bouldin and, for mixtures, BIC; the smaller k on a tie"
)


def score_labels(
    z: FloatArray,
    labels: IntArray,
    *,
    sample_size: int,
    seed: int,
) -> dict[str, float | None]:
    """Silhouette (on a seeded sample of ``sample_size`` rows), Calinski-Harabasz and
    Davies-Bouldin over the clustered rows (noise, -1, left out); None where undefined."""
    clustered = labels >= 0
    points, kept = z[clustered], labels[clustered]
    n_clusters = len(np.unique(kept))
    if not 2 <= n_clusters < len(points):
        return {"silhouette": None, "calinski_harabasz": None, "davies_bouldin": None}
    return {
        "silhouette": _silhouette(points, kept, sample_size, seed),
        "calinski_harabasz": float(calinski_harabasz_score(points, kept)),
        "davies_bouldin": float(davies_bouldin_score(points, kept)),
    }


def choose_k(curve: Sequence[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """The chosen k and the curve with each k's ranks and mean rank added."""
    if not curve:
        raise ValueError("no k to choose from")
    ranked = [dict(point, ranks={}) for point in curve]
    for criterion, higher_is_better in CRITERIA.items():
        values = [point.get(criterion) for point in curve]
        if any(value is None for value in values):
            continue
        order = np.argsort(
            -np.asarray(values) if higher_is_better else np.asarray(values), kind="stable"
        )
        for rank, index in enumerate(order, start=1):
            ranked[index]["ranks"][criterion] = rank
    for point in ranked:
        ranks = point["ranks"].values()
        point["mean_rank"] = float(np.mean(list(ranks))) if ranks else None
    best = min(
        ranked,
        key=lambda point: (
            point["mean_rank"] if point["mean_rank"] is not None else np.inf,
            point["k"],
        ),
    )
    return int(best["k"]), ranked


def _silhouette(points: FloatArray, labels: IntArray, sample_size: int, seed: int) -> float | None:
    if len(points) > sample_size:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(points), size=sample_size, replace=False)
        points, labels = points[chosen], labels[chosen]
    if not 2 <= len(np.unique(labels)) < len(points):
        return None
    return float(silhouette_score(points, labels))
