"""One segmentation run, end to end, with its progress visible while it works.

A long job (`shared.reliable.long_job`): stages commit separately (features, scores, the
fitted run), so the API shows progress, and a killed worker leaves a run that the
re-delivered task trains again from the start. The run holds its kind's advisory lock
for its tenant for its whole length: two runs of one tenant never train at once, and a
dead worker's lock goes with its connection.

Each stage boundary checks the run's row: a run cancelled while it trains stops there
(`shared.runs.RunCancelled`) and ends ``cancelled``, without its segments.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Engine

from services.segment.assignment.runs import activate, active_run_id, load_run
from services.segment.features import (
    MODEL_FEATURES,
    FeatureMatrix,
    compute_features_in_parts,
    load_matrix,
)
from services.segment.modeling.segmenter import Segmenter
from services.segment.scoring.clv_scores import ClvOutcome, score_customers
from services.segment.segmentations import runs
from services.segment.segmentations.runs import SEGMENTATION, SegmentationRequest
from services.segment.settings import SegmentSettings
from services.segment.training.fingerprint import data_fingerprint
from services.segment.training.previous import previous_run
from services.segment.training.result import FittedSegmentation, build_result
from shared.db import session_scope
from shared.runs import RunCancelled

log = logging.getLogger(__name__)


def train_run(engine: Engine, settings: SegmentSettings, run_id: int) -> None:
    """Train the run ``run_id`` unless it is finished; `shared.runs.RunBusyError` while
    its tenant trains another. An error leaves the run to the caller to mark failed."""
    with session_scope(engine) as session:
        run = runs.load_request(session, run_id)
    if run is None:
        return  # done already, or deleted
    with SEGMENTATION.single_runner(engine, run.tenant_id):
        try:
            _train(engine, settings, run)
        except RunCancelled:
            with session_scope(engine) as session:
                runs.mark_cancelled(session, run.id)
            log.info("segmentation run %d cancelled", run.id)


def _train(engine: Engine, settings: SegmentSettings, run: SegmentationRequest) -> None:
    as_of = datetime.now(UTC)
    with session_scope(engine) as session:
        runs.mark_running(session, run.id)
        # Taken before the features: a record arriving meanwhile makes the next request differ.
        fingerprint = data_fingerprint(session, tenant_id=run.tenant_id, params=run.params)
    _stage_done(engine, run, 0.05, "started")
    _compute_features(engine, settings, run, as_of)
    _stage_done(engine, run, 0.4, "features")
    matrix, clv = _score_clv(engine, settings, run, as_of)
    _stage_done(engine, run, 0.5, "clv")
    fitted = _fit(engine, settings, run, matrix)
    _stage_done(engine, run, 0.7, "fitted")
    result = build_result(
        fitted, matrix=matrix, clv=clv, params=run.params, as_of=as_of, fingerprint=fingerprint
    )
    with session_scope(engine) as session:
        runs.save_result(session, run, result)
    if _promote(run, settings, fitted):
        _activate_trained(engine, run, matrix)
    else:
        with session_scope(engine) as session:
            runs.progress(session, run.id, 1.0, "trained")
    log.info("segmentation run %d trained (%d customers)", run.id, len(matrix))


def _stage_done(engine: Engine, run: SegmentationRequest, value: float, stage: str) -> None:
    with session_scope(engine) as session:
        runs.stage_done(session, run.id, value, stage)


def _compute_features(
    engine: Engine, settings: SegmentSettings, run: SegmentationRequest, as_of: datetime
) -> None:
    compute_features_in_parts(
        engine,
        tenant_id=run.tenant_id,
        feature_set=run.params.feature_set,
        as_of=as_of,
        parts=settings.segment_feature_parts,
    )


def _score_clv(
    engine: Engine, settings: SegmentSettings, run: SegmentationRequest, as_of: datetime
) -> tuple[FeatureMatrix, ClvOutcome]:
    """The tenant's vectors with fresh CLV scores in them.

    The features carry the purchase history that the CLV models are fitted on; the fresh
    scores go into the matrix (their columns were read as last scored)."""
    with session_scope(engine) as session:
        matrix = load_matrix(session, tenant_id=run.tenant_id, feature_set=run.params.feature_set)
        clv = score_customers(
            session,
            tenant_id=run.tenant_id,
            matrix=matrix,
            as_of=as_of,
            horizon_days=settings.clv_horizon_days,
            discount_rate=settings.clv_discount_rate,
            min_history_days=settings.clv_min_history_days,
        )
    clv.apply(matrix)
    return matrix, clv


def _fit(
    engine: Engine, settings: SegmentSettings, run: SegmentationRequest, matrix: FeatureMatrix
) -> FittedSegmentation:
    """The model, with segment keys kept stable against the tenant's active run."""
    if len(matrix) < 2:
        raise ValueError(f"{len(matrix)} customers with features: nothing to segment")
    with session_scope(engine) as session:
        previous = previous_run(session, run.tenant_id)
    params = run.params
    segmenter = Segmenter(
        algorithm=params.algorithm,
        k=params.k,
        seed=params.seed,
        sample_size=params.sample_size,
        n_threads=settings.segment_threads,
        features=params.features or MODEL_FEATURES.get(params.feature_set),
    ).fit(matrix.values, feature_names=matrix.names)
    keys = segmenter.assign_keys(
        matrix.customer_pks.tolist(),
        previous_members=previous.members if previous else None,
        previous_centroids=previous.centroids if previous else None,
        used_keys=previous.used_keys if previous else (),
    )
    return FittedSegmentation(segmenter, keys, previous.run_id if previous else None)


def _promote(
    run: SegmentationRequest, settings: SegmentSettings, fitted: FittedSegmentation
) -> bool:
    """Explicit, or automatic when the run is good and (against the last one) stable."""
    if run.params.promote != "auto":
        return run.params.promote == "always"
    silhouette = fitted.segmenter.metrics_.get("silhouette")
    ari = fitted.keys.adjusted_rand_index
    good = silhouette is None or silhouette >= settings.segment_promote_min_silhouette
    stable = ari is None or ari >= settings.segment_promote_min_ari
    return good and stable


def _activate_trained(engine: Engine, run: SegmentationRequest, matrix: FeatureMatrix) -> None:
    with session_scope(engine) as session:
        loaded = load_run(session, run.id)
        assert loaded is not None  # it has just succeeded
        moved = activate(session, loaded, reason=f"retrain: run {run.id}", matrix=matrix)
        runs.progress(session, run.id, 1.0, f"activated; {moved} customers changed segment")


def activate_run(engine: Engine, run_id: int) -> int:
    """Activation asked for through the API; the number of customers who changed."""
    with session_scope(engine) as session:
        run = load_run(session, run_id)
        if run is None or active_run_id(session, run.tenant_id) == run_id:
            return 0
        return activate(session, run, reason=f"activated: run {run_id}")
