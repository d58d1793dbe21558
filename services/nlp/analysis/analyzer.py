"""The analyzer: one backend call per batch, whatever mix of texts, clauses and turns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.nlp.analysis.aspects import AspectTaxonomy
from services.nlp.analysis.language import detect_language, is_supported
from services.nlp.analysis.results import Analysis, ReviewText, Turn, mean_sentiment
from services.nlp.analysis.transcripts import transcript_details
from services.nlp.backends.base import Sentiment, SentimentBackend

MISMATCH_CONFIDENCE = 0.6  # a star rating is contradicted only by a confident label


class _Batch:
    """Texts collected for one backend call; ``slot`` says where each result goes."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, text: str) -> int:
        self.texts.append(text)
        return len(self.texts) - 1


def _rating_mismatch(rating: int | None, sentiment: Sentiment) -> bool:
    if rating is None or sentiment.confidence < MISMATCH_CONFIDENCE:
        return False
    return (rating >= 4 and sentiment.label == "negative") or (
        rating <= 2 and sentiment.label == "positive"
    )


def _gate(text: str) -> Analysis | None:
    """The analysis of a text that is not scored (empty, or in an unsupported language)."""
    if not text.strip():
        return Analysis(status="empty", language=None)
    language = detect_language(text)
    if not is_supported(language):
        return Analysis(status="unsupported_language", language=language)
    return None


class Analyzer:
    def __init__(self, backend: SentimentBackend, aspects: AspectTaxonomy) -> None:
        self.backend = backend
        self.aspects = aspects

    @property
    def model_version(self) -> str:
        return self.backend.version

    def texts(self, texts: Sequence[str]) -> list[Analysis]:
        """Plain texts, each with the aspects it names."""
        return self.reviews([ReviewText(text) for text in texts])

    def reviews(self, reviews: Sequence[ReviewText]) -> list[Analysis]:
        batch = _Batch()
        plans: list[Analysis | tuple[int, list[tuple[int, list[str]]]]] = []
        for review in reviews:
            if gated := _gate(review.text):
                plans.append(gated)
                continue
            whole = batch.add(review.text)
            clauses = [(batch.add(c), names) for c, names in self.aspects.clauses(review.text)]
            plans.append((whole, clauses))
        scored = self.backend.score(batch.texts)
        results = []
        for review, plan in zip(reviews, plans, strict=True):
            if isinstance(plan, Analysis):
                results.append(plan)
                continue
            whole, clauses = plan
            sentiment = scored[whole]
            details: dict[str, Any] = {"aspects": _aspects(clauses, scored)}
            if review.rating is not None:
                details["rating"] = review.rating
                details["rating_mismatch"] = _rating_mismatch(review.rating, sentiment)
            results.append(Analysis("ok", "en", sentiment, details))
        return results

    def transcripts(self, transcripts: Sequence[Sequence[Turn]]) -> list[Analysis]:
        batch = _Batch()
        plans: list[Analysis | list[int]] = []
        for turns in transcripts:
            said = " \n ".join(t.text for t in turns if t.speaker == "customer")
            gated = _gate(said or " \n ".join(t.text for t in turns))
            plans.append(gated if gated else [batch.add(t.text) for t in turns])
        scored = self.backend.score(batch.texts)
        results = []
        for turns, plan in zip(transcripts, plans, strict=True):
            if isinstance(plan, Analysis):
                results.append(plan)
                continue
            mood, details = transcript_details(list(turns), [scored[i] for i in plan], self.aspects)
            status = "ok" if mood else "no_customer_turns"
            results.append(Analysis(status, "en", mood, details))
        return results


def _aspects(clauses: list[tuple[int, list[str]]], scored: list[Sentiment]) -> list[dict[str, Any]]:
    """Each aspect once, with the mood of the clauses that name it."""
    by_aspect: dict[str, list[Sentiment]] = {}
    for slot, names in clauses:
        for name in names:
            by_aspect.setdefault(name, []).append(scored[slot])
    found = []
    for name, sentiments in by_aspect.items():
        mood = mean_sentiment(sentiments)
        found.append({"aspect": name, "label": mood.label, "score": round(mood.score, 4)})
    return found
