"""One backend per process, chosen by ``SEGMENTA_NLP_BACKEND``."""

from __future__ import annotations

from services.nlp.backends.base import SentimentBackend
from services.nlp.settings import NlpSettings


def build_backend(settings: NlpSettings) -> SentimentBackend:
    if settings.nlp_backend == "lexicon":
        from services.nlp.backends.lexicon import LexiconBackend

        return LexiconBackend()
    if settings.nlp_backend == "openai":
        from services.nlp.backends.openai import OpenAIBackend

        return OpenAIBackend.from_settings(settings)
    from services.nlp.backends.local import LocalBackend

    return LocalBackend(
        settings.nlp_model_dir, threads=settings.nlp_threads, batch_size=settings.nlp_batch_size
    )
