"""The owner of the ``segmentation_run`` table: every insert and update of a run is here.

A run is asked for by the API or by the schedule (`create_run`, with parameters that
`SegmentationParams.resolve` filled in from the settings once, within the tenant's limit
of runs in flight), trained by the worker (`load_request`, `mark_running`, `progress`,
`save_result`, `mark_failed`), cancelled by the API (`cancel`, then `mark_cancelled` by
the worker at a stage boundary), and made the tenant's active one by the activation
(`set_active`). Reads for the API and the dashboard
live in their repositories; writes go through here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, func, select, text, update
from sqlmodel import Session

from services.segment.features import FEATURE_SETS
from services.segment.modeling.algorithms import DENSITY as DENSITY_ALGORITHMS
from services.segment.settings import Algorithm, SegmentSettings
from shared.contracts import SEGMENT_TRAIN_SEGMENTATION
from shared.contracts.rules import SegmentProfile, SegmentRules, SegmentStats
from shared.models.segments import Segment, SegmentationRun
from shared.outbox import enqueue
from shared.runs import TERMINAL, ArtifactMetadata, RunBook, RunCancelled, RunKind, RunStatus

SEGMENTATION = RunKind("segmentation", lock_class=0x5E6)
_BOOK = RunBook(SegmentationRun)
_RUN = _BOOK.table.c  # the table's columns, for typed statements
Promote = Literal["auto", "always", "never"]


class SegmentationRequestInvalid(ValueError):  # noqa: N818 (the project names errors X...)
    """Input that is well-formed but does not fit the service's feature sets or algorithm."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class SegmentationParams(BaseModel):
    """What a run trains with, every default filled in; stored as the run's ``params``.

    ``features``: the columns to segment on, when a run names its own; otherwise the
    feature set's modelling subset. ``requested_by``: the API key's client, or
    ``"schedule"``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    algorithm: Algorithm
    k: int | Literal["auto"]
    feature_set: str
    seed: int
    sample_size: int
    promote: Promote
    features: list[str] | None = None
    requested_by: str | None = None

    @classmethod
    def resolve(
        cls,
        settings: SegmentSettings,
        *,
        algorithm: Algorithm | None = None,
        k: int | Literal["auto"] | None = None,
        feature_set: str | None = None,
        seed: int | None = None,
        sample_size: int | None = None,
        promote: Promote = "auto",
        requested_by: str | None = None,
    ) -> SegmentationParams:
        """The one place where a run's defaults come from the settings; checked against
        the feature sets and algorithms that exist (`SegmentationRequestInvalid`)."""
        chosen = algorithm or settings.segment_algorithm
        if (feature_set or settings.segment_feature_set) not in FEATURE_SETS:
            known = ", ".join(sorted(FEATURE_SETS))
            raise SegmentationRequestInvalid("feature_set", f"unknown feature set (known: {known})")
        if chosen in DENSITY_ALGORITHMS:
            if k is not None and k != "auto":
                raise SegmentationRequestInvalid(
                    "k", f"{chosen} finds its own number of segments; leave k out"
                )
            k = "auto"
        return cls(
            algorithm=chosen,
            k=k if k is not None else settings.segment_k,
            feature_set=feature_set or settings.segment_feature_set,
            seed=seed if seed is not None else settings.segment_seed,
            sample_size=sample_size or settings.segment_sample_size,
            promote=promote,
            requested_by=requested_by,
        )

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class SegmentationRequest:
    """A run to train: its row's id and tenant, and its parameters."""

    id: int
    tenant_id: int
    params: SegmentationParams


@dataclass(frozen=True)
class SegmentRecord:
    """One segment of a trained run, as the ``segment`` table keeps it: its rules,
    profile and stats in their contracts' shapes, stored with their version."""

    key: str
    name: str
    description: str
    size: int
    profile: SegmentProfile
    rules: SegmentRules
    stats: SegmentStats


@dataclass(frozen=True)
class SegmentationResult:
    """What a training made: its segments, its artifact (the fitted model, the 2-D map,
    the surrogate tree, the CLV fit) and its metadata (window, metrics, versions)."""

    segments: list[SegmentRecord]
    artifact: dict[str, Any]
    metadata: ArtifactMetadata


def create_run(
    session: Session, *, tenant_id: int, params: SegmentationParams, max_in_flight: int
) -> int:
    """A pending run and the outbox row that gets it trained, in the caller's transaction;
    `shared.runs.RunLimitReached` when the tenant has ``max_in_flight`` runs already."""
    SEGMENTATION.admit(session, _BOOK, tenant_id=tenant_id, limit=max_in_flight)
    run = SegmentationRun(
        tenant_id=tenant_id,
        status=RunStatus.PENDING,
        algorithm=params.algorithm,
        feature_set=params.feature_set,
        seed=params.seed,
        params=params.stored(),
        progress=0.0,
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    enqueue(
        session, tenant_id=tenant_id, task_name=SEGMENT_TRAIN_SEGMENTATION, subject_ids=[run.id]
    )
    return run.id


def load_request(session: Session, run_id: int) -> SegmentationRequest | None:
    """The run to train, or None when it is finished (or gone)."""
    row = session.execute(
        select(_RUN.id, _RUN.tenant_id, _RUN.params).where(
            _RUN.id == run_id, _RUN.status.notin_([str(s) for s in TERMINAL])
        )
    ).one_or_none()
    if row is None:
        return None
    return SegmentationRequest(
        row.id, row.tenant_id, SegmentationParams.model_validate(row.params or {})
    )


# The run's status, its row locked until the transaction ends; None if absent.
lock_status = _BOOK.lock_status
mark_running = _BOOK.start
mark_failed = _BOOK.fail
# The trainer stopped at a stage boundary of a run being cancelled.
mark_cancelled = _BOOK.stop
# The training long job's end when it raised or its worker kept dying.
give_up = _BOOK.give_up
# How far the run got, shown by the API while it trains (the stage in ``metrics``);
# `stage_done` also raises `shared.runs.RunCancelled` when it was asked to stop meanwhile.
progress = _BOOK.progress
stage_done = _BOOK.stage_done


def cancel(session: Session, *, tenant_id: int, run_id: int) -> RunStatus:
    """The tenant's request to cancel the run (`shared.runs.RunKind.cancel`)."""
    return SEGMENTATION.cancel(session, _BOOK, tenant_id=tenant_id, run_id=run_id)


def _json(value: Any) -> Any:
    """Numpy values as plain JSON ones (the database driver and pydantic take only those)."""
    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    return orjson.loads(orjson.dumps(value, option=options))


def save_result(session: Session, run: SegmentationRequest, result: SegmentationResult) -> None:
    """The run's segments and what it learnt; the run succeeds with them."""
    session.execute(delete(Segment).where(Segment.run_id == run.id))  # type: ignore[arg-type]
    session.add_all(
        Segment(
            tenant_id=run.tenant_id,
            run_id=run.id,
            key=record.key,
            name=record.name,
            description=record.description,
            size=record.size,
            profile=record.profile.model_dump(mode="json"),
            rules=record.rules.model_dump(mode="json"),
            stats=record.stats.model_dump(mode="json"),
        )
        for record in result.segments
    )
    session.flush()
    meta = result.metadata
    succeeded = _BOOK.succeed(
        session,
        run.id,
        # Training is over: 1.0 from the moment it reads succeeded (activating it, when
        # promoted, is its own step, shown by ``active`` and the stage in ``metrics``).
        progress=1.0,
        metrics=_json(meta.metrics),
        artifact=_json(result.artifact),
        data_window=meta.data_window.model_dump(mode="json", exclude_none=True),
        library_versions=meta.library_versions,
    )
    if not succeeded:  # asked to stop while it trained: the caller's rollback drops the segments
        raise RunCancelled(run.id)


def set_active(session: Session, *, tenant_id: int, run_id: int) -> None:
    """Make ``run_id`` the tenant's one active run (a unique index allows one)."""
    session.execute(
        update(_BOOK.table).where(_RUN.tenant_id == tenant_id, _RUN.active).values(active=False)
    )
    session.execute(
        update(_BOOK.table).where(_RUN.id == run_id).values(active=True, activated_at=func.now())
    )


_MAP_ARRAY = "jsonb_typeof(artifact -> 'projection' -> '{0}') = 'array'"
# Raw SQL: jsonb surgery on every run of the tenant in one statement.
_EMPTY_MAPS = text(
    f"""
    WITH drawn AS (
        SELECT id,
               coalesce(jsonb_array_length(CASE WHEN {_MAP_ARRAY.format("points")}
                   THEN artifact -> 'projection' -> 'points' END), 0)
             + coalesce(jsonb_array_length(CASE WHEN {_MAP_ARRAY.format("pca_points")}
                   THEN artifact -> 'projection' -> 'pca_points' END), 0) AS n
        FROM segmentation_run
        WHERE tenant_id = :t AND jsonb_typeof(artifact -> 'projection') = 'object'
        FOR UPDATE
    )
    UPDATE segmentation_run r
    SET artifact = jsonb_set(jsonb_set(r.artifact, '{{projection,points}}', '[]'),
                             '{{projection,pca_points}}', '[]')
    FROM drawn WHERE r.id = drawn.id AND drawn.n > 0
    RETURNING drawn.n
    """
)


def empty_maps(session: Session, *, tenant_id: int) -> list[int]:
    """Empty the 2-D map sample of every run of the tenant (an erasure: the points carry
    no id, so no single customer's can be told apart); the points removed per run."""
    return [int(n) for n in session.execute(_EMPTY_MAPS, {"t": tenant_id}).scalars()]
