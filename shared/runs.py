"""What every model run has, whatever it trains: status, bookkeeping, one runner, metadata.

A segmentation, a churn model, a recommender, a bandit policy snapshot: each kind of run
has one owner module in its service (its parameters, its result, its table), and builds
on these pieces:

* `RunStatus`: the one spelling of a run's status, in code and in the database.
* `RunKind`: a kind's name and advisory-lock class; ``kind.single_runner(engine, tenant)``
  lets one run of a tenant work at a time (`RunBusyError` for the others).
* `RunBook`: the status transitions of a run table (pending → running → succeeded or
  failed), each a guarded ``UPDATE`` so a late or repeated call cannot undo a finished run.
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
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import Engine, Table, func, select, text, update
from sqlmodel import Session, SQLModel


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED})
IN_FLIGHT = frozenset({RunStatus.PENDING, RunStatus.RUNNING})


class RetryLater(Exception):  # noqa: N818 (an instruction to the runner, not an error)
    """Raised by a long job that cannot start now (its tenant is busy): ask again later.

    `shared.reliable.long_job` replaces the outbox row by a fresh one due in ``delay_s``,
    without counting an attempt."""

    def __init__(self, message: str, *, delay_s: float = 30) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class RunBusyError(RetryLater):
    """Another run of the same kind and tenant is working; this one is asked for later."""


@dataclass(frozen=True)
class RunKind:
    """A kind of model run. ``lock_class`` is its advisory-lock namespace (the other key
    is the tenant), unique across kinds: two kinds sharing one would block each other."""

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

    def wait_for_runner(self, session: Session, tenant_id: int) -> None:
        """Wait until no run of this kind works for ``tenant_id``, and keep any from
        starting until ``session``'s transaction ends."""
        session.execute(
            text("SELECT pg_advisory_xact_lock(:c, :t)"), {"c": self.lock_class, "t": tenant_id}
        )


class RunBook:
    """Status bookkeeping of one run table.

    The table needs ``id``, ``status``, ``progress``, ``error``, ``started_at`` and
    ``finished_at`` columns. Only the kind's owner module holds a `RunBook`: it is the
    one writer of its table. Every method flushes; the caller's session commits.
    """

    def __init__(self, table: type[SQLModel] | Table) -> None:
        self.table: Any = table if isinstance(table, Table) else table.__table__  # type: ignore[attr-defined]

    def status(self, session: Session, run_id: int) -> RunStatus | None:
        found = session.execute(select(self.table.c.status).where(self.table.c.id == run_id))
        value = found.scalar_one_or_none()
        return None if value is None else RunStatus(value)

    def start(self, session: Session, run_id: int, *, progress: float = 0.05) -> bool:
        """pending (or running: a restart after a dead worker) → running; False if finished."""
        return self._move(
            session,
            run_id,
            IN_FLIGHT,
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
        """Any unfinished run → failed, with the reason (cut to what a person reads)."""
        return self._move(
            session,
            run_id,
            IN_FLIGHT,
            status=RunStatus.FAILED,
            finished_at=func.now(),
            error=error[:2000],
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
