"""The non-learning strategies, with exact propensities.

``random`` shows a uniformly random permutation of the eligible offers (every offer at
every rank with probability 1/k): the cleanest log for off-policy evaluation. ``static``
shows a configured order (offers missing from it follow, in eligible order): propensity 1
for what it shows and 0 for everything else, so a static log can evaluate only itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from services.personalize.modeling.propensity import PropensityTable, static_table, uniform_table


@dataclass(frozen=True)
class RandomPolicy:
    def choose(self, eligible: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
        if n <= 0 or not eligible:
            return []
        return [eligible[i] for i in rng.permutation(len(eligible))[:n]]

    def propensities(self, eligible: Sequence[str], n: int) -> PropensityTable:
        return uniform_table(eligible, n)


@dataclass(frozen=True)
class StaticPolicy:
    order: Sequence[str] = field(default_factory=tuple)
    """The preferred offers, best first (a placement's default offer comes first)."""

    def choose(self, eligible: Sequence[str], n: int) -> list[str]:
        if n <= 0:
            return []
        allowed = set(eligible)
        preferred = [offer for offer in self.order if offer in allowed]
        rest = [offer for offer in eligible if offer not in set(preferred)]
        return [*preferred, *rest][:n]

    def propensities(self, eligible: Sequence[str], n: int) -> PropensityTable:
        return static_table(self.choose(eligible, n), eligible, n)
