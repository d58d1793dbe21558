"""Synthetic customers built like the demo shop's personas: feature rows with each row's
persona, for the segmentation model tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import adjusted_rand_score  # type: ignore[import-untyped]

FEATURES = [
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "discount_share",
    "sentiment",
    "support_rate",
    "tenure_days",
]


@dataclass(frozen=True)
class Persona:
    share: float
    recency_days: tuple[float, float]
    orders: tuple[int, int]
    order_value: float
    discount_share: float
    sentiment: float
    support_rate: float
    tenure_days: tuple[float, float]


# Like segmenta/demo's personas, with the gaps between neighbours a little wider.
PERSONAS = {
    "champion": Persona(0.14, (0, 7), (20, 40), 180, 0.05, 0.7, 0.2, (400, 1500)),
    "loyal_regular": Persona(0.22, (10, 45), (4, 9), 60, 0.10, 0.4, 0.2, (365, 1800)),
    "bargain_hunter": Persona(0.20, (3, 45), (8, 18), 22, 0.90, 0.0, 0.3, (90, 1000)),
    "new_customer": Persona(0.16, (0, 28), (1, 1), 60, 0.50, 0.1, 0.2, (3, 30)),
    "lapsing_high_spender": Persona(0.14, (200, 480), (8, 20), 160, 0.05, -0.4, 1.5, (730, 2000)),
    "unhappy_returner": Persona(0.14, (10, 90), (3, 8), 70, 0.20, -0.8, 4.0, (120, 900)),
}
# Not in the default population: bought once or twice, long ago.
LAPSED_ONE_TIMER = Persona(0.2, (300, 600), (1, 2), 50, 0.3, 0.4, 0.2, (400, 1500))
EXPECTED_NAMES = {
    "champion": "Champions",
    "loyal_regular": "Loyal regulars",
    "bargain_hunter": "Bargain hunters",
    "new_customer": "New customers",
    "lapsing_high_spender": "Lapsing high spenders",
    "unhappy_returner": "Unhappy customers",
}
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def make_customers(
    n: int, seed: int, personas: list[str] | None = None
) -> tuple[FloatArray, IntArray]:
    """Feature rows, shuffled, and each row's persona index (into ``personas``)."""
    rng = np.random.default_rng(seed)
    known = PERSONAS | {"lapsed_one_timer": LAPSED_ONE_TIMER}
    chosen = [known[name] for name in personas or list(PERSONAS)]
    shares = np.array([p.share for p in chosen]) / sum(p.share for p in chosen)
    counts = np.floor(shares * n).astype(int)
    counts[0] += n - counts.sum()
    blocks = []
    for p, count in zip(chosen, counts, strict=True):
        recency = rng.uniform(*p.recency_days, count)
        orders = rng.integers(p.orders[0], p.orders[1] + 1, count).astype(float)
        order_value = p.order_value * rng.lognormal(0, 0.25, count)
        blocks.append(
            np.column_stack(
                [
                    recency,
                    orders,
                    orders * order_value,
                    order_value,
                    np.clip(rng.normal(p.discount_share, 0.07, count), 0, 1),
                    np.clip(rng.normal(p.sentiment, 0.15, count), -1, 1),
                    p.support_rate * rng.lognormal(0, 0.3, count),
                    np.maximum(rng.uniform(*p.tenure_days, count), recency),
                ]
            )
        )
    order = rng.permutation(n)
    return np.vstack(blocks)[order], np.repeat(np.arange(len(chosen)), counts)[order]


def perturbed(data: FloatArray, seed: int) -> FloatArray:
    """The same customers a few days later: a little older, spend and sentiment drift."""
    rng = np.random.default_rng(seed)
    changed = data.copy()
    changed[:, 0] += rng.uniform(0, 5, len(data))
    changed[:, 2] *= rng.lognormal(0, 0.03, len(data))
    changed[:, 5] = np.clip(changed[:, 5] + rng.normal(0, 0.03, len(data)), -1, 1)
    changed[:, 7] += 5
    return changed


def ari(truth: IntArray, labels: IntArray) -> float:
    return float(adjusted_rand_score(truth, labels))


def without_timing(artifact: dict[str, Any]) -> dict[str, Any]:
    return {**artifact, "metrics": {**artifact["metrics"], "fit_seconds": None}}
