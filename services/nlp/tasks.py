"""The nlp tasks: analyse relayed reviews and transcripts, then tell segment who changed.

Each task runs through ``shared.reliable``: the analyses, the segment work and the
deletion of the outbox rows commit together, so a re-delivered batch finds nothing left
to do, and a text that keeps failing is dead-lettered without holding back the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlmodel import Session

from services.nlp import repository as repo
from services.nlp.analysis.analyzer import Analyzer
from services.nlp.analysis.results import Analysis
from shared.contracts import SEGMENT_REFRESH_CUSTOMERS
from shared.outbox import enqueue_customers
from shared.reliable import Subject

log = logging.getLogger(__name__)


def _tell_segment(session: Session, changed: dict[int, set[int]]) -> None:
    for tenant_id, customers in changed.items():
        enqueue_customers(
            session,
            tenant_id=tenant_id,
            task_name=SEGMENT_REFRESH_CUSTOMERS,
            customer_pks=customers,
        )


def _store(
    analyzer: Analyzer,
    session: Session,
    kind: str,
    sources: Sequence[repo.Source],
    analyses: Sequence[Analysis],
    asked: int,
) -> None:
    changed = repo.store_analyses(
        session,
        kind=kind,
        version=analyzer.model_version,
        backend=analyzer.backend.name,
        results=list(zip(sources, analyses, strict=True)),
    )
    _tell_segment(session, changed)
    log.info("analysed %d of %d %ss", len(sources), asked, kind)


def analyze_reviews(analyzer: Analyzer, session: Session, subjects: Sequence[Subject]) -> None:
    ids = [s.subject_id for s in subjects]
    pending = repo.pending_reviews(session, ids, analyzer.model_version)
    analyses = analyzer.reviews([review for _, review in pending])
    _store(analyzer, session, "review", [s for s, _ in pending], analyses, len(ids))


def analyze_transcripts(analyzer: Analyzer, session: Session, subjects: Sequence[Subject]) -> None:
    ids = [s.subject_id for s in subjects]
    pending = repo.pending_transcripts(session, ids, analyzer.model_version)
    analyses = analyzer.transcripts([turns for _, turns in pending])
    _store(analyzer, session, "transcript", [s for s, _ in pending], analyses, len(ids))
