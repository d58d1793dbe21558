"""The probability with which a policy puts each offer at each rank, for the decision log.

Off-policy evaluation divides by these numbers, so a shown offer must never get 0 and
the number must be the probability of what the policy really does. Thompson sampling has
no closed form for "offer a ranks r-th", so it is estimated by Monte Carlo over the
posterior: ``draws`` score vectors, one argsort, one count per (offer, rank). With 4,000
draws the standard error of a propensity ``p`` is ``sqrt(p(1-p)/4000)`` (<= 0.008).

Floor: every policy here explores uniformly with probability ``epsilon`` (a random
permutation of the eligible offers) and follows its ranking otherwise, and it is that
mixture whose propensities are logged, ``(1 - epsilon) p + epsilon / k``: at least
``epsilon / k`` for every eligible offer at every rank, which is true of the policy and
not a fudge. With ``epsilon = 0`` a Monte Carlo zero is raised to ``1 / (2 draws)``,
below what the draws can resolve.

Tables depend only on the posterior, so they are cached per (policy run and version,
segment, eligible set, n) by `PropensityCache`; a new version (after an update) starts
fresh. A one-offer answer is drawn from its cached table (`PropensityTable.draw_first`)
instead of by a fresh Thompson draw: the same distribution up to the table's Monte Carlo
error, a fraction of the cost, and logged with exactly the probability it was drawn with.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
DEFAULT_DRAWS = 4000


@dataclass(frozen=True)
class PropensityTable:
    """``probabilities[i, r]``: the probability that ``offers[i]`` is shown at rank ``r``."""

    offers: tuple[str, ...]
    probabilities: FloatArray

    def of(self, offer: str, rank: int = 0) -> float:
        return float(self.probabilities[self.offers.index(offer), rank])

    def for_ranking(self, ranked: Sequence[str]) -> list[float]:
        """The logged propensity of each offer of a ranking, rank by rank."""
        return [self.of(offer, rank) for rank, offer in enumerate(ranked)]

    @cached_property
    def _first_cumulative(self) -> list[float]:
        return list(accumulate(self.probabilities[:, 0].tolist())) if self.offers else []

    def draw_first(self, u: float) -> list[str]:
        """The offer at rank 0 drawn with exactly its propensity (``u`` uniform in [0, 1)):
        a one-offer answer sampled this way has the probability it is logged with."""
        cumulative = self._first_cumulative
        if not cumulative or cumulative[-1] <= 0:
            return []
        index = bisect_right(cumulative, u * cumulative[-1])
        return [self.offers[min(index, len(self.offers) - 1)]]

    def to_dict(self) -> dict[str, list[float]]:
        return {
            offer: row.tolist() for offer, row in zip(self.offers, self.probabilities, strict=True)
        }


def rank_frequencies(scores: FloatArray, n: int) -> FloatArray:
    """Share of the rows of ``scores`` (draws x offers) in which each offer ranks r-th."""
    draws, k = scores.shape
    if n == 1:  # the common case: the argmax is all that matters, no sort needed
        return np.asarray(np.bincount(scores.argmax(axis=1), minlength=k)[:, None] / draws)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    counts = np.zeros((k, n))
    for rank in range(n):
        counts[:, rank] = np.bincount(top[:, rank], minlength=k)
    return np.asarray(counts / draws, dtype=np.float64)


def mix_uniform(frequencies: FloatArray, epsilon: float, draws: int) -> FloatArray:
    """The propensities of the epsilon-uniform mixture, with the Monte Carlo floor."""
    k = frequencies.shape[0]
    if k == 0:  # nothing eligible (dates, segments, daily caps): nothing to mix
        return np.zeros(frequencies.shape)
    mixed = (1.0 - epsilon) * frequencies + epsilon / k
    floored = np.maximum(mixed, 1.0 / (2.0 * draws)) if epsilon == 0 else mixed
    return np.asarray(floored, dtype=np.float64)


def uniform_table(offers: Sequence[str], n: int) -> PropensityTable:
    """Random strategy, exact: a uniform permutation puts each offer at each rank w.p. 1/k."""
    k = len(offers)
    return PropensityTable(tuple(offers), np.full((k, min(n, k)), 1.0 / max(k, 1)))


def static_table(ranked: Sequence[str], offers: Sequence[str], n: int) -> PropensityTable:
    """Static strategy, exact: the configured order, so 1 where shown and 0 elsewhere."""
    shown = min(n, len(offers))
    table = np.zeros((len(offers), shown))
    for rank, offer in enumerate(ranked[:shown]):
        table[list(offers).index(offer), rank] = 1.0
    return PropensityTable(tuple(offers), table)


class PropensityCache:
    """A small LRU of propensity tables keyed by (run, version, segment, eligible set, n)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._tables: OrderedDict[Hashable, PropensityTable] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], PropensityTable]) -> PropensityTable:
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = compute()
            if len(self._tables) > self.max_entries:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(key)
        return table

    def __len__(self) -> int:
        return len(self._tables)
