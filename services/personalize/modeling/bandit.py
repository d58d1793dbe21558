"""Thompson sampling per segment: one Beta-Bernoulli posterior per (segment, offer).

The segment is the context (as in GrowthBook's bandits): a customer's segment picks the
row of posteriors, each eligible offer draws a conversion rate from its Beta, and the
offers are shown in the order of their draws. An offer the segment has never seen draws
from the prior, so new offers and new segments are explored from the first request.

State is the success and failure counts per (segment, offer) on top of a shared prior,
so a policy is a small JSON document (`to_dict`) that can be a model run's artifact and a
Redis value. ``version_`` grows with every update or re-keying; propensity tables are
cached per version (see `propensity`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Self

import numpy as np

from services.personalize.modeling.estimator import Estimator, check_is_fitted
from services.personalize.modeling.propensity import (
    DEFAULT_DRAWS,
    FloatArray,
    PropensityTable,
    mix_uniform,
    rank_frequencies,
)

FORMAT = "segmenta.bandit.segment_thompson"
FORMAT_VERSION = 1


class FeedbackCount(NamedTuple):
    """A batch's outcome for one (segment, offer): conversions and shown-but-not-converted."""

    segment: str
    offer: str
    successes: float
    failures: float


class SegmentThompson(Estimator):
    """Thompson sampling with a ``Beta(prior_alpha, prior_beta)`` prior per (segment, offer).

    ``epsilon``: the share of decisions that show a uniformly random permutation instead,
    which keeps every logged propensity at least ``epsilon / k`` (off-policy evaluation
    of other policies needs it). ``draws``: Monte Carlo draws per propensity table.
    """

    def __init__(
        self,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        epsilon: float = 0.02,
        draws: int = DEFAULT_DRAWS,
    ) -> None:
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        self.epsilon = epsilon
        self.draws = draws

    def fit(
        self,
        segments: Sequence[str] = (),
        offers: Sequence[str] = (),
        rewards: Sequence[float] | FloatArray = (),
    ) -> Self:
        """Start from the prior and learn from a log of (segment, offer, 0/1 reward) rows."""
        if self.prior_alpha <= 0 or self.prior_beta <= 0:
            raise ValueError("prior_alpha and prior_beta must be positive")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError("epsilon must be between 0 and 1")
        if not len(segments) == len(offers) == len(rewards):
            raise ValueError("segments, offers and rewards must have the same length")
        self.counts_: dict[str, dict[str, list[float]]] = {}
        self.version_ = 0
        totals: dict[tuple[str, str], list[float]] = {}
        for segment, offer, reward in zip(
            segments, offers, np.asarray(rewards, dtype=float), strict=True
        ):
            if not 0.0 <= reward <= 1.0:
                raise ValueError("rewards must be between 0 and 1")
            cell = totals.setdefault((segment, offer), [0.0, 0.0])
            cell[0] += reward
            cell[1] += 1.0 - reward
        self.update(FeedbackCount(s, o, a, b) for (s, o), (a, b) in totals.items())
        return self

    def update(self, feedback: Iterable[FeedbackCount]) -> Self:
        """Add a batch of counts (one new version however many rows the batch has)."""
        check_is_fitted(self, "counts_")
        for row in feedback:
            if row.successes < 0 or row.failures < 0:
                raise ValueError("successes and failures must not be negative")
            cell = self.counts_.setdefault(row.segment, {}).setdefault(row.offer, [0.0, 0.0])
            cell[0] += row.successes
            cell[1] += row.failures
        self.version_ += 1
        return self

    def remap_segments(self, mapping: Mapping[str, str | None]) -> Self:
        """Follow a retrain's re-keying: ``old key -> new key`` moves a segment's counts,
        several old keys onto one new key add theirs up (both were evidence about those
        customers), ``None`` retires a segment (its counts are dropped), and keys not in
        ``mapping`` stay as they are."""
        check_is_fitted(self, "counts_")
        remapped: dict[str, dict[str, list[float]]] = {}
        for old, offers in self.counts_.items():
            new = mapping.get(old, old)
            if new is None:
                continue
            target = remapped.setdefault(new, {})
            for offer, (successes, failures) in offers.items():
                cell = target.setdefault(offer, [0.0, 0.0])
                cell[0] += successes
                cell[1] += failures
        self.counts_ = remapped
        self.version_ += 1
        return self

    def record(self, outcomes: Iterable[tuple[str, str, float, float]]) -> Self:
        """Add ``(segment, offer, shows, conversions)``: shows and conversions may arrive
        in different batches (a conversion of a show counted earlier turns one of its
        failures into a success), so a cell's failures never drop below zero."""
        check_is_fitted(self, "counts_")
        for segment, offer, shows, wins in outcomes:
            if shows < 0 or wins < 0:
                raise ValueError("shows and conversions must not be negative")
            cell = self.counts_.setdefault(segment, {}).setdefault(offer, [0.0, 0.0])
            cell[0] += wins
            cell[1] = max(0.0, cell[1] + shows - wins)
        self.version_ += 1
        return self

    def posterior(self, segment: str, offers: Sequence[str]) -> tuple[FloatArray, FloatArray]:
        """The Beta parameters (alpha, beta) of ``offers`` in ``segment``."""
        check_is_fitted(self, "counts_")
        seen = self.counts_.get(segment, {})
        counts = np.array([seen.get(offer, (0.0, 0.0)) for offer in offers], dtype=np.float64)
        counts = counts.reshape(len(offers), 2)
        return counts[:, 0] + self.prior_alpha, counts[:, 1] + self.prior_beta

    def choose(
        self, segment: str, eligible: Sequence[str], n: int, rng: np.random.Generator
    ) -> list[str]:
        """Up to ``n`` of the ``eligible`` offers, best first."""
        if n <= 0 or not eligible:
            return []
        if self.epsilon > 0 and rng.random() < self.epsilon:
            order = rng.permutation(len(eligible))
        else:
            alpha, beta = self.posterior(segment, eligible)
            order = np.argsort(-rng.beta(alpha, beta), kind="stable")
        return [eligible[i] for i in order[:n]]

    def propensities(
        self, segment: str, eligible: Sequence[str], n: int, rng: np.random.Generator
    ) -> PropensityTable:
        """Monte Carlo estimate of P(offer at rank r) under `choose`, ranks 0..n-1."""
        alpha, beta = self.posterior(segment, eligible)
        scores = rng.beta(alpha, beta, size=(self.draws, len(eligible)))
        frequencies = rank_frequencies(scores, min(n, len(eligible)))
        return PropensityTable(tuple(eligible), mix_uniform(frequencies, self.epsilon, self.draws))

    def means(self, segment: str, offers: Sequence[str]) -> FloatArray:
        alpha, beta = self.posterior(segment, offers)
        return alpha / (alpha + beta)

    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self, "counts_")
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "params": {
                k: float(v) if k != "draws" else int(v) for k, v in self.get_params().items()
            },
            "version": self.version_,
            "counts": {
                s: {o: list(c) for o, c in offers.items()} for s, offers in self.counts_.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentThompson:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} policy")
        policy = cls(**data["params"])
        policy.counts_ = {
            str(s): {str(o): [float(c[0]), float(c[1])] for o, c in offers.items()}
            for s, offers in data["counts"].items()
        }
        policy.version_ = int(data["version"])
        return policy
