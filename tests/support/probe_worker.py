"""A test-only Celery worker consuming outbox batches with the platform's reliable runner.

``celery -A tests.support.probe_worker worker -Q ingest``. Its handler writes one row per
subject to ``probe_effect``; subjects listed in ``probe_poison`` raise, and those listed
in ``probe_killer`` SIGKILL the worker process, as a crashing native library would.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence

from sqlalchemy import text
from sqlmodel import Session

from shared.celery_app import create_celery_app
from shared.db import create_db_engine
from shared.reliable import Subject, WorkerEngine, reliable_task
from shared.settings import get_settings
from tests.support.probe import PROBE_TASK
from tests.support.settings import test_environment

settings = get_settings()
app = create_celery_app("segmenta-probe", settings)
engine = WorkerEngine(lambda: create_db_engine(settings, pool_size=2))
SLOW_S = test_environment().probe_slow_s


@reliable_task(app, PROBE_TASK, engine=engine, max_attempts=settings.max_task_attempts)
def probe(session: Session, subjects: Sequence[Subject]) -> None:
    ids = [s.subject_id for s in subjects]
    poison = set(
        session.execute(
            text("SELECT subject_id FROM probe_poison WHERE subject_id = ANY(:ids)"), {"ids": ids}
        ).scalars()
    )
    killers = set(
        session.execute(
            text("SELECT subject_id FROM probe_killer WHERE subject_id = ANY(:ids)"), {"ids": ids}
        ).scalars()
    )
    for subject in subjects:
        if subject.subject_id in killers:
            os.kill(os.getpid(), signal.SIGKILL)
        if subject.subject_id in poison:
            raise ValueError(f"subject {subject.subject_id} is poison")
        time.sleep(SLOW_S)
        session.execute(
            text(
                "INSERT INTO probe_effect (subject_id, pid) VALUES (:s, :pid) "
                "ON CONFLICT (subject_id) DO UPDATE SET hits = probe_effect.hits + 1"
            ),
            {"s": subject.subject_id, "pid": os.getpid()},
        )
