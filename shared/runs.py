"""What every model run has, whatever it trains: status, bookkeeping, one runner, metadata.

A segmentation, a churn model, a recommender, a bandit policy snapshot: each kind of run
has one owner module in its service (its parameters, its result, its table), and builds
on these pieces:

* `RunStatus`: the one spelling of a run's status, in code and in the database.
* `RunKind`: a kind's name and advisory-lock class; ``kind.single_runner(engine, tenant)``
  lets one run of a tenant work at a time (`RunBusyError` for the others),
  ``kind.admit`` keeps a tenant under its limit of runs in flight (`RunLimitReached`),
  ``kind.try_scheduler_lock`` lets one scheduler of the kind work at a time,
  ``kind.cancel`` answers a request to cancel a tenant's run (`RunDoesNotExist`,
  `RunFinished`), the same for every kind's ``POST .../{id}/cancel``.
* `RunBook`: the status transitions of a run table (pending → running → succeeded or
  failed; pending → cancelled, or running → cancelling → cancelled at the job's next
  stage boundary), each a guarded ``UPDATE`` so a late or repeated call cannot undo a
  finished run.
* `ArtifactMetadata`: what makes a trained artifact reproducible and comparable.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import Engine, Table, func, select, text, update
from sqlmodel import Session, SQLModel

if TYPE_CHECKING:  # shared.reliable imports this module
    from shared.reliable import Subject


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Asked to stop while it worked: it stops at its next stage boundary.
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
# Runs that hold a worker or wait for one: they count against a tenant's limit.
IN_FLIGHT = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.CANCELLING})
_WORKABLE = frozenset({RunStatus.PENDING, RunStatus.RUNNING})


class RetryLater(Exception):  # noqa: N818 (an instruction to the runner, not an error)
    """Raised by a long job that cannot start now (its tenant is busy): ask again later.

    `shared.reliable.long_job` replaces the outbox row by a fresh one due in ``delay_s``,
    without counting an attempt."""

    def __init__(self, message: str, *, delay_s: float = 30) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class RunBusyError(RetryLater):
    """Another run of the same kind and tenant is working; this one is asked for later."""


class RunCancelled(Exception):  # noqa: N818 (an instruction to the job, not an error)
    """Raised at a stage boundary of a run that was asked to stop (or finished meanwhile):
    the job ends there, and `RunBook.stop` records it as cancelled."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"run {run_id} was cancelled")
        self.run_id = run_id


class RunDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    """No run of the kind with this id for the tenant (another tenant's is not told apart)."""

    def __init__(self, kind: str, run_id: int) -> None:
        super().__init__(f"no {kind} run {run_id}")
        self.kind, self.run_id = kind, run_id


class RunFinished(RuntimeError):  # noqa: N818
    """The run to cancel is finished already (succeeded, failed or cancelled)."""

    def __init__(self, kind: str, run_id: int, status: RunStatus) -> None:
        super().__init__(f"{kind} run {run_id} is {status} already; nothing to cancel")
        self.kind, self.run_id, self.status = kind, run_id, status


class RunLimitReached(Exception):  # noqa: N818
    """The tenant has ``limit`` runs of the kind pending or running: no new one now."""

    def __init__(self, kind: str, limit: int, *, retry_after_s: int) -> None:
        super().__init__(
            f"at most {limit} {kind} runs may be pending or running at once; "
            "wait for one to finish or cancel one"
        )
        self.kind, self.limit, self.retry_after_s = kind, limit, retry_after_s


@dataclass(frozen=True)
class RunKind:
    """A kind of model run. ``lock_class`` is its advisory-lock namespace, unique across
    kinds: two kinds sharing one would block each other. The second key says whose lock
    it is: a tenant's id (> 0) its runner, the negated id its admissions, 0 the kind's
    scheduler."""

    name: str
    lock_class: int
    busy_retry_s: int = 30

    _lock_classes: ClassVar[dict[int, str]] = {}

    def __post_init__(self) -> None:
        taken = RunKind._lock_classes.setdefault(self.lock_class, self.name)
        if taken != self.name:
            raise ValueError(f"lock class {self.lock_class:#x} is {taken!r}'s already")

    @contextmanager
    def single_runner(self, engine: Engine, tenant_id: int) -> Iterator[None]:
        """Hold this kind's lock for ``tenant_id`` while the block runs.

        A session-level lock on a connection of its own: it spans the run's many
        transactions, and a worker that dies takes it along with its connection."""
        keys = {"c": self.lock_class, "t": tenant_id}
        with engine.connect() as connection:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:c, :t)"), keys)
            connection.commit()
            if not got.scalar_one():
                raise RunBusyError(
                    f"tenant {tenant_id} is running another {self.name} run",
                    delay_s=self.busy_retry_s,
                )
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:c, :t)"), keys)
                connection.commit()

    def admit(self, session: Session, book: RunBook, *, tenant_id: int, limit: int) -> None:
        """Raise `RunLimitReached` when ``tenant_id`` has ``limit`` runs in flight.

        Admissions of one tenant are serialised until ``session``'s transaction ends (a
        transaction lock), so two requests at once cannot both take the last place."""
        keys = {"c": self.lock_class, "t": -tenant_id}
        session.execute(text("SELECT pg_advisory_xact_lock(:c, :t)"), keys)
        if book.in_flight(session, tenant_id) >= limit:
            raise RunLimitReached(self.name, limit, retry_after_s=self.busy_retry_s)

    def cancel(self, session: Session, book: RunBook, *, tenant_id: int, run_id: int) -> RunStatus:
        """A tenant's request to cancel its run: a pending one is cancelled at once, a
        running one is being cancelled until its job reaches a stage boundary; the run's
        status after the request. `RunDoesNotExist` for an unknown id or another tenant's
        run, `RunFinished` for a finished one."""
        status = book.lock_status(session, tenant_id=tenant_id, run_id=run_id)
        if status is None:
            raise RunDoesNotExist(self.name, run_id)
        after = book.cancel(session, run_id)
        if after is None:
            raise RunFinished(self.name, run_id, status)
        return after

    def try_scheduler_lock(self, session: Session) -> bool:
        """Whether this session is the kind's one scheduler until its transaction ends
        (several beats, or a manual trigger beside one, may call the scheduler at once)."""
        got = session.execute(
            text("SELECT pg_try_advisory_xact_lock(:c, 0)"), {"c": self.lock_class}
        )
        return bool(got.scalar_one())

    def wait_for_runner(self, session: Session, tenant_id: int) -> None:
        """Wait until no run of this kind works for ``tenant_id``, and keep any from
        starting until ``session``'s transaction ends."""
        session.execute(
            text("SELECT pg_advisory_xact_lock(:c, :t)"), {"c": self.lock_class, "t": tenant_id}
        )


class RunBook:
    """Status bookkeeping of one run table.

    The table needs ``id``, ``status``, ``progress``, ``error``, ``started_at`` and
    ``finished_at`` columns (and ``tenant_id`` for `in_flight`). Only the kind's owner
    module holds a `RunBook`: it is the one writer of its table. Every method flushes;
    the caller's session commits.
    """

    def __init__(self, table: type[SQLModel] | Table) -> None:
        self.table: Any = table if isinstance(table, Table) else table.__table__  # type: ignore[attr-defined]

    def status(self, session: Session, run_id: int) -> RunStatus | None:
        found = session.execute(select(self.table.c.status).where(self.table.c.id == run_id))
        value = found.scalar_one_or_none()
        return None if value is None else RunStatus(value)

    def lock_status(self, session: Session, *, tenant_id: int, run_id: int) -> RunStatus | None:
        """The tenant's run's status, its row locked until the transaction ends; None if
        absent (or another tenant's)."""
        found = session.execute(
            select(self.table.c.status)
            .where(self.table.c.tenant_id == tenant_id, self.table.c.id == run_id)
            .with_for_update()
        )
        value = found.scalar_one_or_none()
        return None if value is None else RunStatus(value)

    def in_flight(self, session: Session, tenant_id: int) -> int:
        """How many of the tenant's runs are pending, running or being cancelled."""
        statement = select(func.count()).where(
            self.table.c.tenant_id == tenant_id,
            self.table.c.status.in_([str(s) for s in IN_FLIGHT]),
        )
        return int(session.execute(statement).scalar_one())

    def start(self, session: Session, run_id: int, *, progress: float = 0.05) -> bool:
        """pending (or running: a restart after a dead worker) → running; False if finished
        or being cancelled."""
        return self._move(
            session,
            run_id,
            _WORKABLE,
            status=RunStatus.RUNNING,
            started_at=func.now(),
            progress=progress,
            error=None,
        )

    def succeed(self, session: Session, run_id: int, **values: Any) -> bool:
        """running → succeeded, with the run's own columns (metrics, artifact...)."""
        return self._move(
            session,
            run_id,
            {RunStatus.RUNNING},
            status=RunStatus.SUCCEEDED,
            finished_at=func.now(),
            **values,
        )

    def fail(self, session: Session, run_id: int, error: str) -> bool:
        """Any unfinished run → failed, with the reason (cut to what a person reads); a
        run being cancelled ends cancelled, as asked."""
        failed = self._move(
            session,
            run_id,
            _WORKABLE,
            status=RunStatus.FAILED,
            finished_at=func.now(),
            error=error[:2000],
        )
        return failed or self.stop(session, run_id)

    def cancel(self, session: Session, run_id: int) -> RunStatus | None:
        """Ask a run to stop: a pending one is cancelled at once, a running one is being
        cancelled until its job reaches a stage boundary. The run's status after the
        request, or None when it is finished (or absent)."""
        if self._move(
            session, run_id, {RunStatus.PENDING}, status=RunStatus.CANCELLED, finished_at=func.now()
        ):
            return RunStatus.CANCELLED
        self._move(session, run_id, {RunStatus.RUNNING}, status=RunStatus.CANCELLING)
        status = self.status(session, run_id)
        return status if status is RunStatus.CANCELLING else None

    def give_up(self, session: Session, subject: Subject, reason: str) -> None:
        """A long job's end when it raised or its worker kept dying: the run fails
        (`shared.reliable.GiveUp`)."""
        self.fail(session, subject.subject_id, reason)

    def progress(
        self, session: Session, run_id: int, value: float, stage: str | None = None
    ) -> None:
        """How far the run got, shown while it works; ``stage`` (when given) is kept as
        ``metrics["stage"]``. Whatever the status: a finished run may note its last step."""
        values: dict[str, Any] = {"p": value, "run": run_id}
        merged = ""
        if stage is not None:
            merged = (
                ", metrics = CASE WHEN jsonb_typeof(metrics) = 'object' THEN metrics"
                " ELSE '{}' END || jsonb_build_object('stage', CAST(:stage AS text))"
            )
            values["stage"] = stage
        name = self.table.name
        session.execute(text(f"UPDATE {name} SET progress = :p{merged} WHERE id = :run"), values)

    def stage_done(
        self, session: Session, run_id: int, value: float, stage: str | None = None
    ) -> None:
        """A stage boundary: its `progress`, or `RunCancelled` when the run is no longer
        running (asked to stop meanwhile)."""
        self.checkpoint(session, run_id)
        self.progress(session, run_id, value, stage)

    def checkpoint(self, session: Session, run_id: int) -> None:
        """A stage boundary: raise `RunCancelled` unless the run is still running."""
        if self.status(session, run_id) is not RunStatus.RUNNING:
            raise RunCancelled(run_id)

    def stop(self, session: Session, run_id: int) -> bool:
        """A run being cancelled → cancelled (its job stopped at a stage boundary)."""
        return self._move(
            session,
            run_id,
            {RunStatus.CANCELLING},
            status=RunStatus.CANCELLED,
            finished_at=func.now(),
        )

    def _move(
        self,
        session: Session,
        run_id: int,
        from_: frozenset[RunStatus] | set[RunStatus],
        **values: Any,
    ) -> bool:
        statement = (
            update(self.table)
            .where(self.table.c.id == run_id, self.table.c.status.in_([str(s) for s in from_]))
            .values(**values)
        )
        return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


_LIBRARIES = ("numpy", "scipy", "scikit-learn", "pandas", "threadpoolctl")


def library_versions(packages: tuple[str, ...] = _LIBRARIES) -> dict[str, str]:
    """Python's and each installed package's version (the absent ones left out)."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


class DataWindow(BaseModel):
    """The data a run learnt from: everything known at ``as_of`` (and since ``start``)."""

    model_config = ConfigDict(extra="allow")  # a kind may add its own counts

    as_of: datetime
    start: datetime | None = None
    rows: int | None = Field(default=None, description="the examples it learnt from")


class ArtifactMetadata(BaseModel):
    """What makes a trained artifact reproducible and comparable with another.

    ``metrics`` are the run's own figures; ``baselines`` the same figures for what it
    is compared with (the previous run, a naive model), by baseline name."""

    model_config = ConfigDict(frozen=True)

    kind: str
    data_window: DataWindow
    feature_set: str
    features: list[str] = Field(default_factory=list)
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    metrics: dict[str, JsonValue] = Field(default_factory=dict)
    baselines: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    library_versions: dict[str, str] = Field(default_factory=library_versions)
    seed: int

    def metric_against(self, name: str, baseline: str) -> tuple[Any, Any]:
        """The run's ``name`` figure and the baseline's (None where absent)."""
        return self.metrics.get(name), self.baselines.get(baseline, {}).get(name)
