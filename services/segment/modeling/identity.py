"""Stable segment keys across retrains.

A retrain numbers its clusters afresh; keys let "seg-3, Lapsing high spenders" stay seg-3.
New clusters are matched to the previous run's keys by the Hungarian algorithm on the
Jaccard overlap of their members (pairs under ``min_jaccard`` are not matches). Clusters
left over, e.g. when the previous members are unknown or have mostly churned, are matched
on centroid distance to the previous run's centroids: the root-mean-square difference
of the standardised features, accepted up to ``max_centroid_distance`` standard
deviations. Anything still unmatched is a new segment with a never-used key ``seg-<n>``.
Noise (label -1) is always ``"noise"``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]
from sklearn.metrics import adjusted_rand_score  # type: ignore[import-untyped]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
NOISE_KEY = "noise"
KEY_PREFIX = "seg-"


@dataclass(frozen=True)
class KeyAssignment:
    keys: dict[int, str]
    """Label -> key."""
    matched_by: dict[str, str]
    """Key -> "members", "centroid" or "new"."""
    jaccard: dict[str, float | None]
    """Key -> Jaccard overlap with the previous segment of that key (None: none before)."""
    adjusted_rand_index: float | None
    """Agreement with the previous labels over customers in both runs (None: no members)."""
    retired_keys: list[str]

    def key_of(self, labels: IntArray) -> list[str]:
        return [self.keys[int(label)] for label in labels]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keys"] = {str(label): key for label, key in self.keys.items()}
        return data


def assign_keys(
    labels: IntArray,
    customer_ids: Sequence[Hashable],
    centroids: FloatArray,
    *,
    previous_members: Mapping[Hashable, str] | None = None,
    previous_centroids: Mapping[str, FloatArray] | None = None,
    used_keys: Sequence[str] = (),
    min_jaccard: float = 0.2,
    max_centroid_distance: float = 0.5,
) -> KeyAssignment:
    """``centroids`` (one row per label 0..k-1) and ``previous_centroids`` must be in the
    same standardised space."""
    n_segments = len(centroids)
    previous = previous_members or {}
    overlap = _jaccard(labels, customer_ids, previous, n_segments)
    keys: dict[int, str] = {}
    matched_by: dict[str, str] = {}
    for row, column in _hungarian(overlap.values, maximise=True, limit=min_jaccard):
        keys[row] = overlap.keys[column]
        matched_by[overlap.keys[column]] = "members"
    for label, key in _match_centroids(
        [label for label in range(n_segments) if label not in keys],
        centroids,
        {k: c for k, c in (previous_centroids or {}).items() if k not in matched_by},
        max_centroid_distance,
    ):
        keys[label] = key
        matched_by[key] = "centroid"
    fresh = _fresh_keys([*used_keys, *overlap.keys, *(previous_centroids or {})])
    for label in range(n_segments):
        if label not in keys:
            keys[label] = next(fresh)
            matched_by[keys[label]] = "new"
    keys[-1] = NOISE_KEY
    known = set(overlap.keys) | set(previous_centroids or {})
    return KeyAssignment(
        keys=keys,
        matched_by=matched_by,
        jaccard={keys[label]: overlap.lookup(label, keys[label]) for label in range(n_segments)},
        adjusted_rand_index=_ari(labels, customer_ids, previous, keys),
        retired_keys=sorted(known - set(keys.values())),
    )


@dataclass(frozen=True)
class _Overlap:
    keys: list[str]
    values: FloatArray

    def lookup(self, label: int, key: str) -> float | None:
        return float(self.values[label, self.keys.index(key)]) if key in self.keys else None


def _jaccard(
    labels: IntArray,
    ids: Sequence[Hashable],
    previous: Mapping[Hashable, str],
    n_segments: int,
) -> _Overlap:
    keys = sorted({key for key in previous.values() if key != NOISE_KEY})
    index = {key: i for i, key in enumerate(keys)}
    before = np.fromiter((index.get(previous.get(cid, ""), -1) for cid in ids), np.int64, len(ids))
    both = (before >= 0) & (labels >= 0)
    shared = np.zeros((n_segments, len(keys)))
    np.add.at(shared, (labels[both], before[both]), 1.0)
    new_sizes = np.bincount(labels[labels >= 0], minlength=n_segments)[:, None]
    old_counts = Counter(previous.values())
    old_sizes = np.array([old_counts[key] for key in keys], dtype=np.float64)[None, :]
    union = new_sizes + old_sizes - shared
    return _Overlap(keys, np.divide(shared, union, out=np.zeros_like(shared), where=union > 0))


def _match_centroids(
    free: list[int],
    centroids: FloatArray,
    candidates: Mapping[str, FloatArray],
    limit: float,
) -> list[tuple[int, str]]:
    if not free or not candidates:
        return []
    keys = list(candidates)
    distance = np.array([[_rms(centroids[label], candidates[k]) for k in keys] for label in free])
    return [
        (free[row], keys[col]) for row, col in _hungarian(distance, maximise=False, limit=limit)
    ]


def _hungarian(matrix: FloatArray, *, maximise: bool, limit: float) -> list[tuple[int, int]]:
    if matrix.size == 0:
        return []
    rows, columns = linear_sum_assignment(matrix, maximize=maximise)
    good = matrix[rows, columns] >= limit if maximise else matrix[rows, columns] <= limit
    return [(int(r), int(c)) for r, c in zip(rows[good], columns[good], strict=True)]


def _rms(a: FloatArray, b: FloatArray) -> float:
    if a.shape != b.shape:
        raise ValueError("previous centroids must have one value per feature")
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _fresh_keys(taken: Sequence[str]) -> Iterator[str]:
    numbers = [int(m.group(1)) for key in taken if (m := re.fullmatch(rf"{KEY_PREFIX}(\d+)", key))]
    n = max(numbers, default=0)
    while True:
        n += 1
        yield f"{KEY_PREFIX}{n}"


def _ari(
    labels: IntArray,
    ids: Sequence[Hashable],
    previous: Mapping[Hashable, str],
    keys: dict[int, str],
) -> float | None:
    pairs = [
        (previous[cid], keys[int(label)])
        for cid, label in zip(ids, labels, strict=True)
        if cid in previous
    ]
    if not pairs:
        return None
    before, after = zip(*pairs, strict=True)
    return float(adjusted_rand_score(before, after))
