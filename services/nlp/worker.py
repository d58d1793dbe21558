"""The nlp service's Celery worker: ``celery -A services.nlp.worker worker -Q nlp``.

The model loads once per worker process, after the prefork fork (never per task).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery.signals import worker_process_init
from sqlmodel import Session

from services.nlp.analysis.analyzer import Analyzer
from services.nlp.analysis.aspects import AspectTaxonomy
from services.nlp.backends import build_backend
from services.nlp.settings import get_nlp_settings
from services.nlp.tasks import analyze_reviews, analyze_transcripts
from shared.celery_app import create_celery_app
from shared.contracts import NLP_ANALYZE_REVIEWS, NLP_ANALYZE_TRANSCRIPTS
from shared.db import create_db_engine
from shared.logging import configure_logging
from shared.reliable import Subject, WorkerEngine, reliable_task

settings = get_nlp_settings()
configure_logging(settings.log_level)
app = create_celery_app("segmenta-nlp", settings)
engine = WorkerEngine(lambda: create_db_engine(settings, pool_size=2))


class _AnalyzerHolder:
    def __init__(self) -> None:
        self._analyzer: Analyzer | None = None

    def get(self) -> Analyzer:
        if self._analyzer is None:
            backend = build_backend(settings)
            self._analyzer = Analyzer(backend, AspectTaxonomy.load(settings.nlp_aspects_file))
        return self._analyzer


analyzer = _AnalyzerHolder()


@worker_process_init.connect
def _load_model(**_: Any) -> None:
    analyzer.get()


@reliable_task(app, NLP_ANALYZE_REVIEWS, engine=engine, max_attempts=settings.max_task_attempts)
def _reviews(session: Session, subjects: Sequence[Subject]) -> None:
    analyze_reviews(analyzer.get(), session, subjects)


@reliable_task(app, NLP_ANALYZE_TRANSCRIPTS, engine=engine, max_attempts=settings.max_task_attempts)
def _transcripts(session: Session, subjects: Sequence[Subject]) -> None:
    analyze_transcripts(analyzer.get(), session, subjects)
