"""Attribution models over journeys: numpy in, credits per channel out, no database.

A journey is one customer's touchpoints (channels, oldest first) up to an order (a
conversion, with the order's value) or, for the touches after a customer's last order, up
to the end of the window (no conversion). Every model hands out each conversion once:
its credits over the channels sum to the number of conversions, and revenue credits to
the converting journeys' value.

* last touch / first touch / linear: the conversion goes to the last, the first, or in
  equal parts to every touch of its journey;
* Markov: a first-order chain start -> channels -> conversion | null is fitted to all
  journeys (consecutive repeats collapsed); a channel's removal effect is the share of
  conversion probability lost when its state leads to null. Conversions and revenue are
  split in proportion to the removal effects;
* Shapley: the worth of a set of channels is the conversion rate of the journeys that met
  exactly that set; each converting journey splits its conversion over its channels in
  proportion to their Shapley values within its set (exact: every subset is enumerated,
  so at most ``MAX_CHANNELS`` channels are kept and the rarer ones pooled as ``other``).
  A set never seen alone is worth the most that any of its subsets is worth (worth only
  grows as channels are added), the empty set nothing; negative values count as zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from math import factorial
from typing import Final

import numpy as np
from numpy.typing import NDArray

MODELS: Final = ("last_touch", "first_touch", "linear", "markov", "shapley")
MAX_CHANNELS: Final = 10
OTHER: Final = "other"

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Journey:
    path: tuple[str, ...]  # channels of the touches, oldest first; never empty
    converted: bool
    value: float = 0.0


@dataclass(frozen=True)
class Attribution:
    """Credits per channel (in ``channels`` order) and model: conversions and revenue."""

    channels: tuple[str, ...]
    journeys: int
    conversions: int
    revenue: float
    reach: tuple[int, ...]  # journeys that touched each channel
    credit: dict[str, FloatArray]
    revenue_credit: dict[str, FloatArray]
    removal_effect: FloatArray

    def shares(self, model: str) -> FloatArray:
        total = float(self.credit[model].sum())
        return self.credit[model] / total if total > 0 else np.zeros(len(self.channels))


def kept_channels(journeys: Iterable[Journey], limit: int = MAX_CHANNELS) -> tuple[str, ...]:
    """The channels in order of how many journeys touch them, the rarest pooled beyond
    ``limit`` (``other`` takes the last place)."""
    reach = Counter(channel for journey in journeys for channel in set(journey.path))
    ranked = sorted(reach, key=lambda c: (-reach[c], c))
    if len(ranked) <= limit:
        return tuple(sorted(ranked))
    return (*sorted(ranked[: limit - 1]), OTHER)


def attribute(journeys: Sequence[Journey]) -> Attribution:
    channels = kept_channels(journeys)
    index = {channel: i for i, channel in enumerate(channels)}
    pooled = index.get(OTHER, -1)  # only channels beyond the limit are missing from index
    # Journeys repeat (most are one of a few hundred paths): every model works on the
    # distinct (path, converted) pairs, weighted by how many journeys took them.
    grouped: dict[tuple[tuple[int, ...], bool], list[float]] = {}
    for journey in journeys:
        indices = tuple(index.get(channel, pooled) for channel in journey.path)
        entry = grouped.setdefault((indices, journey.converted), [0.0, 0.0])
        entry[0] += 1
        entry[1] += journey.value
    paths = [list(path) for path, _ in grouped]
    did = [converted for _, converted in grouped]
    counts = [entry[0] for entry in grouped.values()]
    k = len(channels)
    reach = np.zeros(k)
    for path, count in zip(paths, counts, strict=True):
        reach[list(set(path))] += count
    converted = [
        (path, entry[0], entry[1])
        for path, (_, won), entry in zip(paths, grouped, grouped.values(), strict=True)
        if won
    ]
    conversions = int(sum(count for _, count, _ in converted))
    revenue = float(sum(value for _, _, value in converted))
    credit: dict[str, FloatArray] = {}
    revenue_credit: dict[str, FloatArray] = {}
    shapley = ShapleyWeights(paths, did, k, counts)
    per_journey: dict[str, Callable[[list[int]], FloatArray]] = {
        "last_touch": lambda p: _one_hot(p[-1], k),
        "first_touch": lambda p: _one_hot(p[0], k),
        "linear": lambda p: np.bincount(p, minlength=k) / len(p),
        "shapley": shapley.weights,
    }
    for model, weights_of in per_journey.items():
        credit[model], revenue_credit[model] = _sum_weights(converted, weights_of, k)
    effect = removal_effects(paths, did, k, counts)
    markov_share = effect / effect.sum() if effect.sum() > 0 else np.zeros(k)
    credit["markov"] = markov_share * conversions
    revenue_credit["markov"] = markov_share * revenue
    return Attribution(
        channels=channels,
        journeys=len(journeys),
        conversions=conversions,
        revenue=revenue,
        reach=tuple(int(r) for r in reach),
        credit={model: credit[model] for model in MODELS},
        revenue_credit={model: revenue_credit[model] for model in MODELS},
        removal_effect=effect,
    )


def _one_hot(i: int, k: int) -> FloatArray:
    out = np.zeros(k)
    out[i] = 1.0
    return out


def _sum_weights(
    converted: Sequence[tuple[list[int], float, float]],
    weights_of: Callable[[list[int]], FloatArray],
    k: int,
) -> tuple[FloatArray, FloatArray]:
    """Credits from (path, journeys, their value) of converting journeys."""
    conversions, revenue = np.zeros(k), np.zeros(k)
    for path, count, value in converted:
        weights = weights_of(path)
        conversions += weights * count
        revenue += weights * value
    return conversions, revenue


def _collapse(path: Sequence[int]) -> list[int]:
    return [c for i, c in enumerate(path) if i == 0 or path[i - 1] != c]


def removal_effects(
    paths: Sequence[Sequence[int]],
    converted: Sequence[bool],
    k: int,
    weights: Sequence[float] | None = None,
) -> FloatArray:
    """Per channel, the share of the chain's conversion probability lost without it
    (``weights``: how many journeys each path stands for; one each by default)."""
    start, conv, null = k, k + 1, k + 2
    counts = np.zeros((k + 3, k + 3))
    for i, (path, did) in enumerate(zip(paths, converted, strict=True)):
        states = [start, *_collapse(path), conv if did else null]
        np.add.at(counts, (states[:-1], states[1:]), 1.0 if weights is None else weights[i])
    totals = counts.sum(axis=1, keepdims=True)
    probs = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    base = _conversion_probability(probs, k)
    effects = np.zeros(k)
    if base <= 0:
        return effects
    for channel in range(k):
        removed = probs.copy()
        removed[channel, :] = 0.0
        removed[channel, null] = 1.0
        effects[channel] = max(0.0, 1.0 - _conversion_probability(removed, k) / base)
    return effects


def _conversion_probability(probs: FloatArray, k: int) -> float:
    """Probability of being absorbed in ``conversion`` from ``start`` (transient states
    are the k channels and start)."""
    transient = list(range(k + 1))
    q = probs[np.ix_(transient, transient)]
    r = probs[transient, k + 1]
    absorbed = np.linalg.lstsq(np.eye(k + 1) - q, r, rcond=None)[0]
    return float(absorbed[k])


class ShapleyWeights:
    """Each channel set's worth (its journeys' conversion rate) and, per set seen in a
    conversion, the channels' Shapley values normalised to shares (cached per set)."""

    def __init__(
        self,
        paths: Sequence[Sequence[int]],
        converted: Sequence[bool],
        k: int,
        weights: Sequence[float] | None = None,
    ) -> None:
        size = 1 << k
        seen, wins = np.zeros(size), np.zeros(size)
        for i, (path, did) in enumerate(zip(paths, converted, strict=True)):
            mask = _mask(path)
            weight = 1.0 if weights is None else weights[i]
            seen[mask] += weight
            wins[mask] += weight * did
        worth = np.divide(wins, seen, out=np.zeros(size), where=seen > 0)
        bits = np.array([bin(m).count("1") for m in range(size)])
        for mask in sorted(range(1, size), key=lambda m: bits[m]):
            if seen[mask] == 0:
                worth[mask] = max(worth[mask & ~(1 << i)] for i in range(k) if mask >> i & 1)
        self.k, self.worth, self.bits = k, worth, bits
        self._all = np.arange(size)
        self._cache: dict[int, FloatArray] = {}

    def weights(self, path: Sequence[int]) -> FloatArray:
        mask = _mask(path)
        if mask not in self._cache:
            self._cache[mask] = self._shares(mask)
        return self._cache[mask]

    def values(self, mask: int) -> FloatArray:
        """The exact Shapley value of every channel in ``mask`` for the game restricted
        to the subsets of ``mask`` (0 for channels outside it)."""
        members = [i for i in range(self.k) if mask >> i & 1]
        n = len(members)
        subsets = self._all[(self._all & mask) == self._all]
        weight = np.array([factorial(b) * factorial(n - b - 1) / factorial(n) for b in range(n)])
        values = np.zeros(self.k)
        for i in members:
            without = subsets[(subsets >> i & 1) == 0]
            gain = self.worth[without | (1 << i)] - self.worth[without]
            values[i] = float((weight[self.bits[without]] * gain).sum())
        return values

    def _shares(self, mask: int) -> FloatArray:
        values: FloatArray = np.clip(self.values(mask), 0.0, None)
        if values.sum() <= 0:  # no channel adds anything: an equal split
            values = np.array([mask >> i & 1 for i in range(self.k)], dtype=np.float64)
        shares: FloatArray = values / values.sum()
        return shares


def _mask(path: Iterable[int]) -> int:
    mask = 0
    for channel in path:
        mask |= 1 << channel
    return mask
