"""The segment service's task handlers (registered in ``worker.py``)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.assignment.refresh import refresh_customers
from services.segment.settings import SegmentSettings
from services.segment.training.pipeline import RunBusyError, activate_run, train_run
from services.segment.training.schedule import retry_later
from shared.reliable import Subject

log = logging.getLogger(__name__)


def refresh(session: Session, subjects: Sequence[Subject]) -> None:
    """Customers whose activity or sentiment changed: refresh features, re-assign."""
    by_tenant: dict[int, list[int]] = defaultdict(list)
    for subject in subjects:
        by_tenant[subject.tenant_id].append(subject.subject_id)
    for tenant_id, pks in by_tenant.items():
        changed = refresh_customers(session, tenant_id=tenant_id, customer_pks=pks)
        log.info("refreshed %d customers; %d changed segment", len(pks), changed)


def train(
    engine: Engine, settings: SegmentSettings, session: Session, subjects: Sequence[Subject]
) -> None:
    for subject in subjects:
        try:
            train_run(engine, settings, subject.subject_id)
        except RunBusyError:
            retry_later(session, tenant_id=subject.tenant_id, run_id=subject.subject_id)


def activate(engine: Engine, subjects: Sequence[Subject]) -> None:
    for subject in subjects:
        moved = activate_run(engine, subject.subject_id)
        log.info("run %d activated; %d customers changed segment", subject.subject_id, moved)
