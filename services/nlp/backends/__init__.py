"""Sentiment backends behind one interface; ``build_backend`` picks one from settings."""

from services.nlp.backends.base import LABELS, Sentiment, SentimentBackend
from services.nlp.backends.factory import build_backend

__all__ = ["LABELS", "Sentiment", "SentimentBackend", "build_backend"]
