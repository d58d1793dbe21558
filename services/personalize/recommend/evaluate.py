"""Offline evaluation of a recommender on a time split: precision@k and NDCG@k of the
model and of the popularity baseline, measured on the same held-out purchases."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from numpy.typing import NDArray

from services.personalize.recommend.model import NO_SEGMENT, Recommender


def precision_at_k(
    recommended: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int
) -> float:
    """Mean share of each user's first ``k`` recommendations that they went on to buy
    (users who bought nothing afterwards are left out)."""
    scores = [
        len(set(list(items)[:k]) & truth) / k
        for items, truth in zip(recommended, relevant, strict=True)
        if truth
    ]
    return float(np.mean(scores)) if scores else 0.0


def ndcg_at_k(recommended: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int) -> float:
    """Mean normalised discounted cumulative gain at ``k``, binary relevance."""
    scores = []
    for items, truth in zip(recommended, relevant, strict=True):
        if not truth:
            continue
        gain = sum(1 / math.log2(rank + 2) for rank, i in enumerate(list(items)[:k]) if i in truth)
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(truth))))
        scores.append(gain / ideal)
    return float(np.mean(scores)) if scores else 0.0


@dataclass(frozen=True)
class Split:
    """Purchases before the cut (to learn from) and the items each user bought after it."""

    train: sp.csr_matrix
    test_users: NDArray[np.int64]
    relevant: list[set[int]]


def time_split(
    users: NDArray[np.int64],
    items: NDArray[np.int64],
    after_cut: NDArray[np.bool_],
    shape: tuple[int, int],
    *,
    repeatable: NDArray[np.bool_] | None = None,
) -> Split:
    """Learn from the purchases before the cut; a user's relevant items are those bought
    after it that they may be recommended (not bought before, unless ``repeatable``)."""
    before = ~after_cut
    train = sp.csr_matrix(
        (np.ones(int(before.sum()), dtype=np.float32), (users[before], items[before])), shape=shape
    )
    train.sum_duplicates()
    owned = train > 0
    later: dict[int, set[int]] = {}
    for user, item in zip(users[after_cut].tolist(), items[after_cut].tolist(), strict=True):
        if (repeatable is not None and repeatable[item]) or not owned[user, item]:
            later.setdefault(user, set()).add(item)
    test_users = np.array(sorted(later), dtype=np.int64)
    return Split(train, test_users, [later[u] for u in test_users.tolist()])


@dataclass(frozen=True)
class Comparison:
    k: int
    users: int
    model: dict[str, float]
    popularity: dict[str, float]

    def lift(self, metric: str) -> float:
        """How far the model is above popularity on ``metric`` (0.3: 30% above)."""
        base = self.popularity[metric]
        return self.model[metric] / base - 1 if base > 0 else math.inf

    def as_metrics(self) -> dict[str, float | int]:
        return {
            "k": self.k,
            "test_users": self.users,
            **{f"{name}_at_{self.k}": round(v, 5) for name, v in self.model.items()},
            **{
                f"popularity_{name}_at_{self.k}": round(v, 5) for name, v in self.popularity.items()
            },
            **{f"lift_{name}": round(self.lift(name), 4) for name in self.model},
        }


def compare(
    split: Split,
    recommender: Recommender,
    *,
    k: int = 10,
    segments: NDArray[np.int64] | None = None,
    n_segments: int = 0,
    repeatable: NDArray[np.bool_] | None = None,
) -> Comparison:
    """Fit ``recommender`` on the split's training purchases and score it and the
    popularity baseline (everyone's most bought items, the same exclusions) at ``k``."""
    recommender.fit(split.train, segments, n_segments)
    picks = recommender.recommend(split.test_users, k, repeatable=repeatable, reasons=False)
    model = [[p.item for p in row] for row in picks]
    baseline = _popularity_lists(split, k, repeatable)
    return Comparison(
        k=k,
        users=len(split.test_users),
        model=_scores(model, split.relevant, k),
        popularity=_scores(baseline, split.relevant, k),
    )


def _popularity_lists(
    split: Split, k: int, repeatable: NDArray[np.bool_] | None
) -> list[list[int]]:
    buyers = np.asarray((split.train > 0).sum(axis=0), dtype=np.float64).ravel()
    ranked = np.lexsort((np.arange(buyers.size), -buyers))
    lists = []
    for user in split.test_users.tolist():
        row = split.train[user]
        owned = set(row.indices.tolist())
        if repeatable is not None:
            owned = {i for i in owned if not repeatable[i]}
        lists.append([int(i) for i in ranked[: k + len(owned)] if int(i) not in owned][:k])
    return lists


def _scores(lists: list[list[int]], relevant: list[set[int]], k: int) -> dict[str, float]:
    return {"precision": precision_at_k(lists, relevant, k), "ndcg": ndcg_at_k(lists, relevant, k)}


__all__ = [
    "NO_SEGMENT",
    "Comparison",
    "Split",
    "compare",
    "ndcg_at_k",
    "precision_at_k",
    "time_split",
]
