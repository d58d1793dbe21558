"""Reliable consumption of relayed outbox work, in two kinds of task.

* `reliable_task`, a short task: its effect and the deletion of its outbox rows commit in
  one transaction (the handler gets that session), so a re-delivered message finds
  nothing left to do. A subject that keeps failing is retried with backoff.
* `long_job`, a job that runs for minutes (a training, a bulk rescoring): it is driven by
  its run row, opens its own sessions (to show progress, and because no transaction
  should stay open for minutes), and is restarted when its process dies. Its guarantee
  is stated on `long_job`.

Both: Celery re-queues a message whose worker died (acks_late + reject on worker lost),
but no broker counts how often; our own attempt counter on the outbox row does, and a
subject that keeps failing (or keeps killing its process) is dead-lettered after
``max_attempts`` while the rest of its batch completes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from celery import Celery
from sqlalchemy import Engine, text
from sqlmodel import Session

from shared.contracts import LONG_JOBS, OutboxBatch, queue_for
from shared.db import session_scope
from shared.outbox import enqueue
from shared.pii import redact
from shared.runs import RetryLater

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    outbox_id: int
    tenant_id: int
    subject_id: int
    customer_pk: int | None
    attempts: int


Handler = Callable[[Session, Sequence[Subject]], None]
Job = Callable[[Engine, Subject], None]
GiveUp = Callable[[Session, Subject, str], None]


_LOAD = text(
    "SELECT id, tenant_id, subject_id, customer_pk, attempts FROM outbox "
    "WHERE id = ANY(:ids) ORDER BY id"
)
_BUMP = text(
    "UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY(:ids) "
    "RETURNING id, tenant_id, subject_id, customer_pk, attempts"
)
_COMPLETE = text("DELETE FROM outbox WHERE id = ANY(:ids)")
_DEAD_LETTER = text(
    """
    WITH gone AS (DELETE FROM outbox WHERE id = :id
                  RETURNING tenant_id, task_name, subject_id, customer_pk, attempts, last_error)
    INSERT INTO dead_letter (tenant_id, task_name, subject_id, customer_pk, attempts, reason)
    SELECT tenant_id, task_name, subject_id, customer_pk, attempts - 1,
           'gave up after ' || (attempts - 1) || ' attempts; last error: '
           || coalesce(last_error, 'the worker process died')
    FROM gone
    """
)
# Retried through the relay after a backoff. If newer work for the same subject is
# already pending, that row covers this one.
_RETRY_LATER = text(
    """
    UPDATE outbox o SET published_at = NULL, last_error = :error,
        available_at = now() + make_interval(secs => least(2 ^ o.attempts, 300))
    WHERE o.id = :id AND NOT EXISTS (
        SELECT 1 FROM outbox p WHERE p.id <> o.id AND p.task_name = o.task_name
          AND p.subject_id = o.subject_id AND p.published_at IS NULL)
    """
)
_DROP = text("DELETE FROM outbox WHERE id = :id")


def _subjects(rows: Sequence[Any]) -> list[Subject]:
    return [Subject(*row) for row in rows]


def _describe(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:500]


@dataclass
class ReliableRunner:
    """Runs a handler over the subjects of one outbox batch."""

    engine: Engine
    handler: Handler
    max_attempts: int

    def run(self, outbox_ids: Sequence[int]) -> None:
        with session_scope(self.engine) as session:
            pending = _subjects(session.execute(_LOAD, {"ids": list(outbox_ids)}).all())
        if not pending:
            return  # done already, or erased meanwhile
        first_try = len(pending) > 1 and all(s.attempts == 0 for s in pending)
        if first_try and self._try_batch(pending):
            return
        for subject in pending:
            self._run_one(subject.outbox_id)

    def _try_batch(self, pending: list[Subject]) -> bool:
        ids = [s.outbox_id for s in pending]
        with session_scope(self.engine) as session:
            bumped = _subjects(session.execute(_BUMP, {"ids": ids}).all())
        try:
            with session_scope(self.engine) as session:
                self.handler(session, bumped)
                session.execute(_COMPLETE, {"ids": ids})
        except Exception as exc:
            # One bad subject must not hold back the rest: go one by one.
            log.warning("batch of %d failed (%s); retrying one by one", len(ids), _describe(exc))
            return False
        return True

    def _run_one(self, outbox_id: int) -> None:
        with session_scope(self.engine) as session:
            bumped = _subjects(session.execute(_BUMP, {"ids": [outbox_id]}).all())
            if bumped and bumped[0].attempts > self.max_attempts:
                session.execute(_DEAD_LETTER, {"id": outbox_id})
                log.error(
                    "outbox row %d dead-lettered after %d attempts", outbox_id, self.max_attempts
                )
                return
        if not bumped:
            return
        try:
            with session_scope(self.engine) as session:
                self.handler(session, bumped)
                session.execute(_COMPLETE, {"ids": [outbox_id]})
        except Exception as exc:
            self._retry_later(outbox_id, exc)

    def _retry_later(self, outbox_id: int, exc: Exception) -> None:
        error = _describe(exc)
        log.warning("outbox row %d failed: %s", outbox_id, error)
        with session_scope(self.engine) as session:
            updated = session.execute(_RETRY_LATER, {"id": outbox_id, "error": error})
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                session.execute(_DROP, {"id": outbox_id})


@dataclass
class LongJobRunner:
    """Runs a long job for each subject of one outbox batch, one after the other."""

    engine: Engine
    name: str
    job: Job
    max_attempts: int
    give_up: GiveUp | None

    def run(self, outbox_ids: Sequence[int]) -> None:
        for outbox_id in outbox_ids:
            self._run_one(outbox_id)

    def _run_one(self, outbox_id: int) -> None:
        with session_scope(self.engine) as session:
            bumped = _subjects(session.execute(_BUMP, {"ids": [outbox_id]}).all())
            if not bumped:
                return  # done already, or erased meanwhile
            subject = bumped[0]
            if subject.attempts > self.max_attempts:
                self._end(session, subject, f"its worker died {self.max_attempts} times")
                session.execute(_DEAD_LETTER, {"id": outbox_id})
                log.error("%s %d dead-lettered", self.name, subject.subject_id)
                return
        try:
            self.job(self.engine, subject)
        except RetryLater as later:
            with session_scope(self.engine) as session:
                # Deleted first: a row of the subject still pending would absorb the new one.
                session.execute(_DROP, {"id": outbox_id})
                enqueue(
                    session,
                    tenant_id=subject.tenant_id,
                    task_name=self.name,
                    subject_ids=[subject.subject_id],
                    delay_s=later.delay_s,
                )
            return
        except Exception as exc:
            log.warning("%s %d failed: %s", self.name, subject.subject_id, _describe(exc))
            with session_scope(self.engine) as session:
                self._end(session, subject, _describe(exc))
                session.execute(_DROP, {"id": outbox_id})
            return
        with session_scope(self.engine) as session:
            session.execute(_DROP, {"id": outbox_id})

    def _end(self, session: Session, subject: Subject, reason: str) -> None:
        if self.give_up is not None:
            self.give_up(session, subject, reason)


T = TypeVar("T")


class PerProcess(Generic[T]):
    """One ``T`` per worker process (an engine, a Redis client), made lazily after the
    prefork fork: a connection pool inherited across a fork would be shared by both."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = self._factory()
        return self._value


WorkerEngine = PerProcess[Engine]


def reliable_task(
    app: Celery, name: str, *, engine: WorkerEngine, max_attempts: int
) -> Callable[[Handler], Handler]:
    """Register ``handler(session, subjects)`` as the Celery task ``name``: a short task.

    The handler's effect (written through ``session``) and the deletion of the batch's
    outbox rows commit in one transaction: the work is done exactly once in effect. A
    failing subject is retried with backoff, and dead-lettered after ``max_attempts``."""

    if name in LONG_JOBS:
        raise ValueError(f"{name} is a long job (shared.contracts.LONG_JOBS): use long_job")

    def register(handler: Handler) -> Handler:
        def task(*, outbox_ids: list[int]) -> None:
            batch = OutboxBatch(outbox_ids=outbox_ids)
            ReliableRunner(engine.get(), handler, max_attempts).run(batch.outbox_ids)

        app.task(name=name, acks_late=True, reject_on_worker_lost=True)(task)
        return handler

    return register


def long_job(
    app: Celery,
    name: str,
    *,
    engine: WorkerEngine,
    max_attempts: int,
    give_up: GiveUp | None = None,
) -> Callable[[Job], Job]:
    """Register ``job(engine, subject)`` as the Celery task ``name``: a long job.

    The job owns its sessions and is driven by its run row: it reads the row, returns at
    once when the row is finished (a re-delivery, a duplicate), and otherwise works the
    row to a finished state, committing progress as it goes. The guarantee:

    * the outbox row is completed only once the job has returned or raised, so a job
      whose process dies is delivered again and restarts (from its row's state; a job
      must therefore be restartable), up to ``max_attempts`` times;
    * an error the job raises ends it: ``give_up(session, subject, reason)`` records the
      failure on the run row and the outbox row is deleted, in one transaction; errors
      are not retried (a training repeats minutes of work for the same error; the
      caller asks for a new run);
    * after ``max_attempts`` deaths, ``give_up`` runs and the outbox row is dead-lettered
      in one transaction, so no run stays ``running`` forever;
    * `RetryLater` (its tenant is busy) re-enqueues the subject after a delay, without
      counting an attempt.

    Unlike `reliable_task`, the job's effects and the outbox deletion do not commit
    together: the run row, not the outbox, is the record of what was done.

    A long job goes to its service's runs queue (`shared.contracts.queue_for`), so that
    a worker consuming only the service's real-time queue never waits behind one; its
    name must therefore be listed in `shared.contracts.LONG_JOBS`.
    """
    if name not in LONG_JOBS:
        raise ValueError(
            f"{name} is not in shared.contracts.LONG_JOBS: it would be routed to the "
            f"real-time queue {queue_for(name)!r}"
        )

    def register(job: Job) -> Job:
        def task(*, outbox_ids: list[int]) -> None:
            batch = OutboxBatch(outbox_ids=outbox_ids)
            LongJobRunner(engine.get(), name, job, max_attempts, give_up).run(batch.outbox_ids)

        app.task(name=name, acks_late=True, reject_on_worker_lost=True)(task)
        return job

    return register
