"""The recommender: customers with similar purchases (user-based nearest neighbours),
implicit-feedback ALS and item-item co-purchase, blended; per-segment popularity for
customers with little history.

scikit-learn's contract, numpy and scipy in, no database: the training job loads the
purchases, calls `Recommender.fit`, then `Recommender.recommend` for every customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

NO_SEGMENT = -1
_CHUNK = 512
_TIE = 1e-6


class Reason(StrEnum):
    BOUGHT_TOGETHER = "bought_together"
    SIMILAR_CUSTOMERS = "similar_customers"
    SEGMENT_POPULAR = "segment_popular"
    POPULAR = "popular"


@dataclass(frozen=True)
class Pick:
    """One recommended item: its index, its score in [0, 1], why, and (for a
    co-purchase) the bought item it goes with."""

    item: int
    score: float
    reason: Reason
    because: int | None = None


class Recommender:
    """Recommendations from a users x items matrix of purchase counts.

    ``neighbour_weight`` is the share of the blend given to what the customer's
    ``neighbours`` most similar customers (cosine of the bought sets, squared so the
    closest count most) bought; the rest goes to ALS and co-purchase, ``cooc_weight``
    splitting it between them (0: ALS alone, 1: co-purchase alone). ``neighbours=0``
    turns the neighbours off. Ties (items no source scores) go to the most bought.
    Customers with fewer than ``min_history`` distinct items bought get their segment's
    most popular items instead."""

    def __init__(
        self,
        *,
        factors: int = 32,
        iterations: int = 15,
        regularization: float = 0.05,
        alpha: float = 10.0,
        cooc_weight: float = 0.5,
        neighbours: int = 30,
        neighbour_weight: float = 1.0,
        min_history: int = 2,
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.cooc_weight = cooc_weight
        self.neighbours = neighbours
        self.neighbour_weight = neighbour_weight if neighbours > 0 else 0.0
        self.min_history = min_history
        self.seed = seed

    def get_params(self) -> dict[str, float | int]:
        return {
            "factors": self.factors,
            "iterations": self.iterations,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "cooc_weight": self.cooc_weight,
            "neighbours": self.neighbours,
            "neighbour_weight": self.neighbour_weight,
            "min_history": self.min_history,
            "seed": self.seed,
        }

    def fit(
        self,
        purchases: sp.csr_matrix,
        segments: NDArray[np.int64] | None = None,
        n_segments: int = 0,
    ) -> Recommender:
        """``purchases[u, i]``: how often user ``u`` bought item ``i``; ``segments[u]``:
        the user's segment index in ``[0, n_segments)``, or `NO_SEGMENT`."""
        counts = sp.csr_matrix(purchases, dtype=np.float32)
        n_users, n_items = counts.shape
        segments = np.full(n_users, NO_SEGMENT, dtype=np.int64) if segments is None else segments
        bought = (counts > 0).astype(np.float32).tocsr()
        self.history_ = bought
        self.segment_popularity_ = _popularity(bought, segments, n_segments)
        confidence = counts.copy()
        confidence.data = np.log1p(confidence.data)
        if confidence.nnz and self.neighbour_weight < 1:
            # implicit parallelises itself; a BLAS thread pool on top only contends.
            with threadpool_limits(1, "blas"):
                als = AlternatingLeastSquares(
                    factors=self.factors,
                    regularization=self.regularization,
                    alpha=self.alpha,
                    iterations=self.iterations,
                    random_state=self.seed,
                    num_threads=1,
                )
                als.fit(confidence, show_progress=False)
            self.user_factors_ = np.asarray(als.user_factors, dtype=np.float32)
            self.item_factors_ = np.asarray(als.item_factors, dtype=np.float32)
        else:
            self.user_factors_ = np.zeros((n_users, 1), dtype=np.float32)
            self.item_factors_ = np.zeros((n_items, 1), dtype=np.float32)
        self.cooc_ = _cosine_cooccurrence(bought)
        self.segments_ = segments
        sizes = np.asarray(bought.sum(axis=1), dtype=np.float64).ravel()
        self.user_norms_ = np.sqrt(np.maximum(sizes, 1.0))
        buyers = np.asarray(bought.sum(axis=0), dtype=np.float64).ravel()
        # A hair of popularity orders the items no source scores, most bought first.
        self.tie_break_ = _TIE * buyers / max(float(buyers.max(initial=0.0)), 1.0)
        return self

    def recommend(
        self,
        users: NDArray[np.int64],
        n: int,
        *,
        repeatable: NDArray[np.bool_] | None = None,
        reasons: bool = True,
    ) -> list[list[Pick]]:
        """The top ``n`` items for each of ``users``. Items a user bought are left out,
        except those marked ``repeatable`` (consumables)."""
        if not hasattr(self, "history_"):
            raise ValueError("this Recommender is not fitted yet: call fit first")
        n_items = self.item_factors_.shape[0]
        repeat = np.zeros(n_items, dtype=bool) if repeatable is None else repeatable
        out: list[list[Pick]] = []
        for start in range(0, len(users), _CHUNK):
            chunk = users[start : start + _CHUNK]
            out.extend(self._chunk(chunk, n, repeat, reasons))
        return out

    def _chunk(
        self, users: NDArray[np.int64], n: int, repeat: NDArray[np.bool_], reasons: bool
    ) -> list[list[Pick]]:
        history = self.history_[users]
        sizes = np.diff(history.indptr)
        blend = np.zeros((len(users), self.history_.shape[1]))
        if self.neighbour_weight < 1:
            scores = _row_normalised(self.user_factors_[users] @ self.item_factors_.T)
            cooc = _row_normalised((history @ self.cooc_).toarray())
            blend += (1 - self.neighbour_weight) * (
                (1 - self.cooc_weight) * scores + self.cooc_weight * cooc
            )
        if self.neighbour_weight > 0:
            blend += self.neighbour_weight * _row_normalised(self._neighbours(users, history))
        blend = (1 - _TIE) * blend + self.tie_break_
        cold = sizes < self.min_history
        segments = self.segments_[users]
        blend[cold] = self.segment_popularity_[segments[cold]]
        bought = history.toarray() > 0
        blend[bought & ~repeat] = -np.inf
        picks: list[list[Pick]] = []
        for row, user_cold in enumerate(cold):
            top = _top(blend[row], n)
            if user_cold:
                reason = Reason.POPULAR if segments[row] == NO_SEGMENT else Reason.SEGMENT_POPULAR
                picks.append([Pick(int(i), float(blend[row, i]), reason) for i in top])
                continue
            owned = history.indices[history.indptr[row] : history.indptr[row + 1]]
            values = [float(blend[row, i]) for i in top]
            picks.append(
                self._explain(top, values, owned) if reasons else _unexplained(top, values)
            )
        return picks

    def _neighbours(self, users: NDArray[np.int64], history: sp.csr_matrix) -> NDArray[np.float64]:
        """Per item, the squared similarities of the ``neighbours`` most similar customers
        who bought it (cosine of the bought sets; the customer is not their own)."""
        n_users = self.history_.shape[0]
        out = np.zeros((len(users), self.history_.shape[1]))
        # Blocks of at most ~16M similarities, whatever the number of customers.
        block = max(1, min(len(users), (1 << 24) // max(n_users, 1)))
        for start in range(0, len(users), block):
            rows = slice(start, start + block)
            similar = (history[rows] @ self.history_.T).toarray()
            similar /= np.outer(self.user_norms_[users[rows]], self.user_norms_)
            similar[np.arange(similar.shape[0]), users[rows]] = 0.0
            if self.neighbours < n_users:
                beyond = np.argpartition(-similar, self.neighbours - 1, axis=1)[
                    :, self.neighbours :
                ]
                np.put_along_axis(similar, beyond, 0.0, axis=1)
            kept = sp.csr_matrix(np.square(similar))
            out[rows] = (kept @ self.history_).toarray()
        return out

    def _explain(
        self, top: NDArray[np.intp], scores: list[float], owned: NDArray[np.int32]
    ) -> list[Pick]:
        """Each item with the bought item it was most often bought together with."""
        if owned.size == 0 or top.size == 0:
            return _unexplained(top, scores)
        together = self.cooc_[owned][:, top].toarray()  # owned x recommended
        best = together.argmax(axis=0)
        return [
            Pick(int(item), score, Reason.BOUGHT_TOGETHER, int(owned[best[col]]))
            if together[best[col], col] > 0
            else Pick(int(item), score, Reason.SIMILAR_CUSTOMERS)
            for col, (item, score) in enumerate(zip(top, scores, strict=True))
        ]

    def popular(self, segment: int, n: int) -> list[Pick]:
        """The segment's top ``n`` (`NO_SEGMENT`: everyone's), for customers nobody knows."""
        scores = self.segment_popularity_[segment]
        reason = Reason.POPULAR if segment == NO_SEGMENT else Reason.SEGMENT_POPULAR
        return [Pick(int(i), float(scores[i]), reason) for i in _top(scores, n) if scores[i] > 0]


def _unexplained(top: NDArray[np.intp], scores: list[float]) -> list[Pick]:
    return [
        Pick(int(i), score, Reason.SIMILAR_CUSTOMERS) for i, score in zip(top, scores, strict=True)
    ]


def _top(scores: NDArray[np.floating], n: int) -> NDArray[np.intp]:
    allowed = np.flatnonzero(np.isfinite(scores))
    if allowed.size > n:
        allowed = allowed[np.argpartition(-scores[allowed], n - 1)[:n]]
    # Ties broken by item index: the same data always gives the same list.
    return allowed[np.lexsort((allowed, -scores[allowed]))]


def _row_normalised(matrix: NDArray[np.floating]) -> NDArray[np.float64]:
    dense = np.asarray(matrix, dtype=np.float64)
    if dense.size == 0:
        return dense
    low = dense.min(axis=1, keepdims=True)
    span = dense.max(axis=1, keepdims=True) - low
    normalised: NDArray[np.float64] = np.divide(
        dense - low, span, out=np.zeros_like(dense), where=span > 0
    )
    return normalised


def _popularity(
    bought: sp.csr_matrix, segments: NDArray[np.int64], n_segments: int
) -> NDArray[np.float64]:
    """Row ``s``: the share of segment ``s``'s buyers who bought each item, smoothed
    towards everyone's; the last row (index `NO_SEGMENT`) is everyone's."""
    n_items = bought.shape[1]
    overall = np.asarray(bought.sum(axis=0), dtype=np.float64).ravel()
    overall /= max(bought.shape[0], 1)
    rows = np.empty((n_segments + 1, n_items))
    rows[-1] = overall
    for segment in range(n_segments):
        members = np.flatnonzero(segments == segment)
        counts = np.asarray(bought[members].sum(axis=0), dtype=np.float64).ravel()
        prior = 5.0  # a small segment leans on everyone's popularity
        rows[segment] = (counts + prior * overall) / (len(members) + prior)
    return rows


def _cosine_cooccurrence(bought: sp.csr_matrix) -> sp.csr_matrix:
    """Item x item: buyers in common over the geometric mean of the buyer counts."""
    together = (bought.T @ bought).tocsr().astype(np.float64)
    together.setdiag(0)
    together.eliminate_zeros()
    buyers = np.sqrt(np.asarray(bought.sum(axis=0), dtype=np.float64).ravel())
    buyers[buyers == 0] = 1.0
    scale = sp.diags(1.0 / buyers)
    return (scale @ together @ scale).tocsr()
