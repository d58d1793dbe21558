"""What the analysis of one text, review or transcript comes to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.nlp.backends.base import Sentiment

STEADY = 0.25  # a change of mood smaller than this (on the -1..1 scale) is no change


@dataclass(frozen=True)
class ReviewText:
    text: str
    rating: int | None = None


@dataclass(frozen=True)
class Turn:
    speaker: str  # customer, agent or bot
    text: str


@dataclass(frozen=True)
class Analysis:
    status: str  # ok, unsupported_language, empty, no_customer_turns
    language: str | None
    sentiment: Sentiment | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        s = self.sentiment
        return {
            "status": self.status,
            "language": self.language,
            "label": s.label if s else None,
            "score": round(s.score, 4) if s else None,
            "confidence": round(s.confidence, 4) if s else None,
            **self.details,
        }


def mean_sentiment(sentiments: list[Sentiment]) -> Sentiment:
    """The average mood of several texts (a speaker's turns, say)."""
    score = sum(s.score for s in sentiments) / len(sentiments)
    if score >= STEADY:
        label = "positive"
    elif score <= -STEADY:
        label = "negative"
    else:
        label = "neutral"
    agreeing = [s.confidence for s in sentiments if s.label == label]
    confidence = sum(agreeing) / len(sentiments) if agreeing else 0.0
    return Sentiment(label=label, score=score, confidence=confidence)
