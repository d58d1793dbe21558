"""The default backend: the fine-tuned MiniLM sentiment model, int8 ONNX, fully offline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from services.nlp.backends.base import Sentiment
from services.nlp.local_model import LocalSentimentModel


class LocalBackend:
    name = "local"

    def __init__(
        self, model_dir: Path | None = None, *, threads: int | None = None, batch_size: int = 64
    ) -> None:
        self._model = LocalSentimentModel.load(model_dir, threads=threads)
        self._batch_size = batch_size
        self.version = self._model.version

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        if not texts:
            return []
        probs = self._model.predict_proba(texts, batch_size=self._batch_size)
        return [Sentiment.from_probabilities(*map(float, row)) for row in probs]
