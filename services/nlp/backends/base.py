"""What every sentiment backend answers, whatever model is behind it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

LABELS: Final = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Sentiment:
    label: str  # one of LABELS
    score: float  # -1 (negative) .. 1 (positive)
    confidence: float  # 0 .. 1: how sure the backend is of the label

    @classmethod
    def from_probabilities(cls, negative: float, neutral: float, positive: float) -> Sentiment:
        probs = (negative, neutral, positive)
        best = max(range(3), key=probs.__getitem__)
        return cls(label=LABELS[best], score=positive - negative, confidence=probs[best])


class SentimentBackend(Protocol):
    name: str
    # Results are stored per (source, version): a new version adds results beside the old.
    version: str

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        """One sentiment per text, in order."""
        ...
