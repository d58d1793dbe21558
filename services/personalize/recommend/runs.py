"""The owner of the ``recommender_run`` table: every insert and update of a run is here.

A run is asked for by the API or the schedule (`create_run`, parameters resolved once by
`RecommenderParams.resolve`), trained by the personalize runs worker (`load_request`,
`mark_running`, `stage_done`, `save_result`, `mark_failed`), cancelled by the API
(`cancel`, then `mark_cancelled` by the worker at a stage boundary). The tenant's latest
succeeded run is the one served.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text
from sqlmodel import Session

from services.personalize.recommend.settings import RecommendSettings
from shared.contracts import PERSONALIZE_TRAIN_RECOMMENDER
from shared.models.recommend import RecommenderRun
from shared.outbox import enqueue
from shared.runs import TERMINAL, ArtifactMetadata, RunBook, RunCancelled, RunKind, RunStatus

RECOMMENDER = RunKind("recommender", lock_class=0x5EC)
_BOOK = RunBook(RecommenderRun)
_RUN = _BOOK.table.c


class RecommenderParams(BaseModel):
    """What a run trains with, every default filled in; stored as the run's ``params``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    factors: int = 32
    iterations: int = 15
    regularization: float = 0.05
    alpha: float = 10.0
    cooc_weight: float = 0.5
    neighbours: int = 30
    neighbour_weight: float = 1.0
    min_history: int = 2
    seed: int = 0
    top_n: int = 50
    exclude_bought: bool = True
    repeat_categories: list[str] = []
    holdout_days: int = 30
    requested_by: str | None = None

    @classmethod
    def resolve(
        cls, settings: RecommendSettings, requested_by: str | None = None, **chosen: Any
    ) -> RecommenderParams:
        """The one place where a run's defaults come from the settings."""
        defaults = {
            "top_n": settings.personalize_recs_top_n,
            "repeat_categories": settings.personalize_recs_repeat_categories,
            "holdout_days": settings.personalize_recs_holdout_days,
        }
        given = {name: value for name, value in chosen.items() if value is not None}
        return cls(**{**defaults, **given, "requested_by": requested_by})

    def model_params(self) -> dict[str, Any]:
        return self.model_dump(
            include={
                "factors",
                "iterations",
                "regularization",
                "alpha",
                "cooc_weight",
                "neighbours",
                "neighbour_weight",
                "min_history",
                "seed",
            }
        )


@dataclass(frozen=True)
class RecommenderRequest:
    id: int
    tenant_id: int
    params: RecommenderParams


def create_run(
    session: Session, *, tenant_id: int, params: RecommenderParams, max_in_flight: int
) -> int:
    """A pending run and the outbox row that gets it trained, in the caller's
    transaction; `shared.runs.RunLimitReached` beyond ``max_in_flight``."""
    RECOMMENDER.admit(session, _BOOK, tenant_id=tenant_id, limit=max_in_flight)
    run = RecommenderRun(
        tenant_id=tenant_id,
        status=RunStatus.PENDING,
        params=params.model_dump(mode="json", exclude_none=True),
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    enqueue(
        session, tenant_id=tenant_id, task_name=PERSONALIZE_TRAIN_RECOMMENDER, subject_ids=[run.id]
    )
    return run.id


def read_run(session: Session, *, tenant_id: int, run_id: int) -> RecommenderRun | None:
    run = session.get(RecommenderRun, run_id)
    return run if run is not None and run.tenant_id == tenant_id else None


def load_request(session: Session, run_id: int) -> RecommenderRequest | None:
    """The run to train, or None when it is finished (or gone)."""
    row = session.execute(
        select(_RUN.id, _RUN.tenant_id, _RUN.params).where(
            _RUN.id == run_id, _RUN.status.notin_([str(s) for s in TERMINAL])
        )
    ).one_or_none()
    if row is None:
        return None
    return RecommenderRequest(
        row.id, row.tenant_id, RecommenderParams.model_validate(row.params or {})
    )


mark_running = _BOOK.start
mark_failed = _BOOK.fail
# The trainer stopped at a stage boundary of a run being cancelled.
mark_cancelled = _BOOK.stop
# The training long job's end when it raised or its worker kept dying.
give_up = _BOOK.give_up
# A stage boundary: its progress, or `shared.runs.RunCancelled` when the run was stopped.
stage_done = _BOOK.stage_done


def cancel(session: Session, *, tenant_id: int, run_id: int) -> RunStatus:
    """The tenant's request to cancel the run (`shared.runs.RunKind.cancel`)."""
    return RECOMMENDER.cancel(session, _BOOK, tenant_id=tenant_id, run_id=run_id)


def save_result(session: Session, run_id: int, metadata: ArtifactMetadata) -> None:
    succeeded = _BOOK.succeed(
        session,
        run_id,
        progress=1.0,
        metrics={"evaluation": metadata.metrics, "baselines": metadata.baselines},
        data_window=metadata.data_window.model_dump(mode="json", exclude_none=True),
        library_versions=metadata.library_versions,
    )
    if not succeeded:
        raise RunCancelled(run_id)


def due_tenants(session: Session, *, now: datetime, every: timedelta) -> list[int]:
    """Tenants with orders whose last run (of any outcome) was asked for before
    ``now - every``, or that never had one; none while one is in flight. (Orders, not
    lines: their tenant index answers without a scan.)"""
    rows = session.execute(
        text(
            """
            SELECT t.id FROM tenant t
            WHERE EXISTS (SELECT 1 FROM orders o WHERE o.tenant_id = t.id)
              AND NOT EXISTS (
                SELECT 1 FROM recommender_run r WHERE r.tenant_id = t.id
                  AND (r.created_at > :since OR r.status IN ('pending', 'running', 'cancelling')))
            ORDER BY t.id
            """
        ),
        {"since": now - every},
    )
    return [int(tenant_id) for (tenant_id,) in rows]


def latest_succeeded(session: Session, *, tenant_id: int) -> int | None:
    # Ids are opaque (not in creation order): the latest is the last created.
    found = session.execute(
        select(_RUN.id)
        .where(_RUN.tenant_id == tenant_id, _RUN.status == str(RunStatus.SUCCEEDED))
        .order_by(_RUN.created_at.desc(), _RUN.id.desc())
        .limit(1)
    )
    value = found.scalar_one_or_none()
    return None if value is None else int(value)
