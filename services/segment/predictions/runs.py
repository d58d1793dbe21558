"""The owner of the ``prediction_run`` and ``prediction_score`` tables: every write of a
prediction run is here (its creation by the API or the schedule, its progress, its
result, the tenant's active run per model), as `services.segment.segmentations.runs`
is for segmentations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text, update
from sqlmodel import Session

from services.segment.bulk import copy_temp_table
from services.segment.features import FEATURE_SETS
from services.segment.predictions.data import Model
from services.segment.predictions.model import Reasons
from services.segment.settings import SegmentSettings
from shared.contracts import SEGMENT_TRAIN_PREDICTION
from shared.models.predictions import PredictionRun
from shared.outbox import enqueue
from shared.runs import TERMINAL, ArtifactMetadata, RunBook, RunCancelled, RunKind, RunStatus

PREDICTION = RunKind("prediction", lock_class=0x5E7)
_BOOK = RunBook(PredictionRun)
REASONS = 3  # the top reasons kept per customer
_RUN = _BOOK.table.c


class PredictionRequestInvalid(ValueError):  # noqa: N818 (the project names errors X...)
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class PredictionParams(BaseModel):
    """What a run trains with, every default filled in; stored as the run's ``params``.

    ``as_of``: the cut-off to score at; None scores the present (the time the run
    starts), and only such a run becomes the active one of its model."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model: Model
    horizon_days: int
    feature_set: str
    seed: int
    as_of: datetime | None = None
    requested_by: str | None = None

    @classmethod
    def resolve(
        cls,
        settings: SegmentSettings,
        *,
        model: Model,
        horizon_days: int | None = None,
        as_of: datetime | None = None,
        feature_set: str | None = None,
        seed: int | None = None,
        requested_by: str | None = None,
    ) -> PredictionParams:
        chosen = feature_set or settings.segment_feature_set
        if chosen not in FEATURE_SETS:
            known = ", ".join(sorted(FEATURE_SETS))
            raise PredictionRequestInvalid("feature_set", f"unknown feature set (known: {known})")
        return cls(
            model=model,
            horizon_days=horizon_days or settings.prediction_horizon_days,
            feature_set=chosen,
            seed=seed if seed is not None else settings.segment_seed,
            as_of=as_of,
            requested_by=requested_by,
        )

    @property
    def backtest(self) -> bool:
        return self.as_of is not None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class PredictionRequest:
    id: int
    tenant_id: int
    params: PredictionParams


@dataclass(frozen=True)
class PredictionResult:
    """The scores of every customer of the scoring cut-off and what the run learnt."""

    as_of: datetime
    customer_pks: NDArray[np.int64]
    probability: NDArray[np.float64]
    expected_spend: NDArray[np.float64] | None
    reasons: Reasons
    artifact: dict[str, Any]
    metadata: ArtifactMetadata


def create_run(
    session: Session, *, tenant_id: int, params: PredictionParams, max_in_flight: int
) -> int:
    """A pending run and the outbox row that gets it trained, in the caller's transaction;
    `shared.runs.RunLimitReached` when the tenant has ``max_in_flight`` runs already."""
    PREDICTION.admit(session, _BOOK, tenant_id=tenant_id, limit=max_in_flight)
    run = PredictionRun(
        tenant_id=tenant_id,
        status=RunStatus.PENDING,
        model=params.model,
        params=params.stored(),
        feature_set=params.feature_set,
        as_of=params.as_of,
        horizon_days=params.horizon_days,
        seed=params.seed,
        progress=0.0,
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    enqueue(session, tenant_id=tenant_id, task_name=SEGMENT_TRAIN_PREDICTION, subject_ids=[run.id])
    return run.id


def load_request(session: Session, run_id: int) -> PredictionRequest | None:
    """The run to train, or None when it is finished (or gone)."""
    row = session.execute(
        select(_RUN.id, _RUN.tenant_id, _RUN.params).where(
            _RUN.id == run_id, _RUN.status.notin_([str(s) for s in TERMINAL])
        )
    ).one_or_none()
    if row is None:
        return None
    return PredictionRequest(row.id, row.tenant_id, PredictionParams.model_validate(row.params))


mark_running = _BOOK.start
# The trainer stopped at a stage boundary of a run being cancelled.
mark_cancelled = _BOOK.stop
# The training long job's end when it raised or its worker kept dying.
give_up = _BOOK.give_up
# A stage boundary: its progress, or `shared.runs.RunCancelled` when the run was asked
# to stop meanwhile.
stage_done = _BOOK.stage_done


def cancel(session: Session, *, tenant_id: int, run_id: int) -> RunStatus:
    """The tenant's request to cancel the run (`shared.runs.RunKind.cancel`)."""
    return PREDICTION.cancel(session, _BOOK, tenant_id=tenant_id, run_id=run_id)


def _json(value: Any) -> Any:
    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    return orjson.loads(orjson.dumps(value, option=options))


_STORE_SCORES = text(
    """
    INSERT INTO prediction_score (run_id, customer_pk, tenant_id, probability,
                                  expected_spend, reasons)
    SELECT :run, u.pk, :tenant, u.probability, nullif(u.spend, 'NaN'),
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'feature', (CAST(:names AS text[]))[r.f + 1], 'value', r.v, 'push', r.p)
                       ORDER BY r.k) FILTER (WHERE r.f >= 0), '[]')
            FROM (VALUES (1, u.f1, u.v1, u.p1), (2, u.f2, u.v2, u.p2), (3, u.f3, u.v3, u.p3))
                AS r(k, f, v, p))
    FROM prediction_scores u
    -- A customer erased while the run trained is left out (the cascade ran already).
    WHERE EXISTS (SELECT FROM customer c WHERE c.id = u.pk AND c.tenant_id = :tenant)
    ON CONFLICT (run_id, customer_pk) DO UPDATE SET probability = EXCLUDED.probability,
        expected_spend = EXCLUDED.expected_spend, reasons = EXCLUDED.reasons
    """
)
# The customer view's churn is the active churn model's probability, nobody else's.
_CHURN_SCORES = text(
    """
    WITH cleared AS (
        UPDATE customer_score SET churn = NULL
        WHERE tenant_id = :tenant AND churn IS NOT NULL
          AND customer_pk NOT IN (SELECT customer_pk FROM prediction_score WHERE run_id = :run)
    )
    INSERT INTO customer_score AS s (customer_pk, tenant_id, churn, updated_at)
    SELECT customer_pk, tenant_id, probability, now() FROM prediction_score WHERE run_id = :run
    ON CONFLICT (customer_pk) DO UPDATE SET churn = EXCLUDED.churn, updated_at = now()
    """
)


def save_result(session: Session, run: PredictionRequest, result: PredictionResult) -> None:
    """The run's scores and what it learnt; the run succeeds with them, and a run of the
    present becomes its model's active one."""
    spend = result.expected_spend
    n = len(result.customer_pks)
    reasons = result.reasons
    columns: dict[str, NDArray[Any]] = {
        "pk": result.customer_pks,
        "probability": result.probability,
        "spend": spend if spend is not None else np.full(n, np.nan),
    }
    for k in range(REASONS):
        # Columns past the reasons a run computed stay empty (-1: no feature).
        has = k < reasons.features.shape[1]
        columns[f"f{k + 1}"] = reasons.features[:, k] if has else np.full(n, -1)
        columns[f"v{k + 1}"] = reasons.values[:, k] if has else np.zeros(n)
        columns[f"p{k + 1}"] = reasons.pushes[:, k] if has else np.zeros(n)
    copy_temp_table(session, "prediction_scores", columns)
    names = result.metadata.features
    session.execute(_STORE_SCORES, {"run": run.id, "tenant": run.tenant_id, "names": names})
    meta = result.metadata
    succeeded = _BOOK.succeed(
        session,
        run.id,
        progress=1.0,
        as_of=result.as_of,
        metrics=_json({**meta.metrics, "baselines": meta.baselines, "stage": "scored"}),
        artifact=_json(result.artifact),
        data_window=meta.data_window.model_dump(mode="json", exclude_none=True),
        library_versions=meta.library_versions,
    )
    if not succeeded:  # asked to stop while it trained: the caller's rollback drops the scores
        raise RunCancelled(run.id)
    if not run.params.backtest:
        _set_active(session, run)


def _set_active(session: Session, run: PredictionRequest) -> None:
    table = _BOOK.table
    session.execute(
        update(table)
        .where(_RUN.tenant_id == run.tenant_id, _RUN.model == run.params.model, _RUN.active)
        .values(active=False)
    )
    session.execute(update(table).where(_RUN.id == run.id).values(active=True))
    if run.params.model == "churn":
        session.execute(_CHURN_SCORES, {"run": run.id, "tenant": run.tenant_id})
