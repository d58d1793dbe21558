"""VADER: a rule-based fallback that needs no model and ships its own lexicon."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.nlp.backends.base import Sentiment

# VADER's own convention for its compound score.
THRESHOLD = 0.05


class LexiconBackend:
    name = "lexicon"

    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()
        self.version = f"vader-{version('vaderSentiment')}"

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> Sentiment:
        compound = float(self._analyzer.polarity_scores(text)["compound"])
        if compound >= THRESHOLD:
            label = "positive"
        elif compound <= -THRESHOLD:
            label = "negative"
        else:
            label = "neutral"
        # |compound| grows with the weight of evidence; near zero, neutral is the sure call.
        confidence = abs(compound) if label != "neutral" else 1.0 - abs(compound) / THRESHOLD / 2
        return Sentiment(label=label, score=compound, confidence=round(confidence, 4))
