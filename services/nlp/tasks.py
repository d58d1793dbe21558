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
from shared.contracts import SEGMENT_REFRESH_CUSTOMERS
from shared.outbox import enqueue
from shared.reliable import Subject

log = logging.getLogger(__name__)


def _tell_segment(session: Session, changed: dict[int, set[int]]) -> None:
    for tenant_id, customers in changed.items():
        pks = sorted(customers)
        enqueue(
            session,
            tenant_id=tenant_id,
            task_name=SEGMENT_REFRESH_CUSTOMERS,
            subject_ids=pks,
            customer_pks=pks,
        )


def analyze_reviews(analyzer: Analyzer, session: Session, subjects: Sequence[Subject]) -> None:
    version = analyzer.model_version
    pending = repo.pending_reviews(session, [s.subject_id for s in subjects], version)
    analyses = analyzer.reviews([review for _, review in pending])
    changed = repo.store_analyses(
        session,
        kind="review",
        version=version,
        backend=analyzer.backend.name,
        results=[(source, a) for (source, _), a in zip(pending, analyses, strict=True)],
    )
    _tell_segment(session, changed)
    log.info("analysed %d of %d reviews", len(pending), len(subjects))


def analyze_transcripts(analyzer: Analyzer, session: Session, subjects: Sequence[Subject]) -> None:
    version = analyzer.model_version
    pending = repo.pending_transcripts(session, [s.subject_id for s in subjects], version)
    analyses = analyzer.transcripts([turns for _, turns in pending])
    changed = repo.store_analyses(
        session,
        kind="transcript",
        version=version,
        backend=analyzer.backend.name,
        results=[(source, a) for (source, _), a in zip(pending, analyses, strict=True)],
    )
    _tell_segment(session, changed)
    log.info("analysed %d of %d transcripts", len(pending), len(subjects))
