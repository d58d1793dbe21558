"""The segment service's task handlers (registered in ``worker.py``), of two kinds.

* Short tasks (`shared.reliable.reliable_task`) get the session whose commit also
  completes their outbox rows: `refresh`.
* Long jobs (`shared.reliable.long_job`) get the engine and one subject, and are driven
  by their run row: `train` and `activate`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.assignment.refresh import refresh_customers
from services.segment.settings import SegmentSettings
from services.segment.training.pipeline import activate_run, train_run
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


def train(engine: Engine, settings: SegmentSettings, subject: Subject) -> None:
    """Train one run (a no-op once it is finished); `shared.runs.RunBusyError`, which
    the long-job runner turns into a later delivery, while its tenant trains another."""
    train_run(engine, settings, subject.subject_id)


def activate(engine: Engine, subject: Subject) -> None:
    """Make one succeeded run the tenant's active one (a no-op if it is already)."""
    moved = activate_run(engine, subject.subject_id)
    log.info("run %d activated; %d customers changed segment", subject.subject_id, moved)
