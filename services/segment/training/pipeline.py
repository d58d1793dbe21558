"""One segmentation run, end to end, with its progress visible while it works.

Stages commit separately (features, scores, the fitted run), so the API shows progress
and a killed worker leaves a run that the re-delivered task simply trains again. The
run holds a Postgres advisory lock for its tenant for its whole length: two runs of
one tenant never train at once, and a dead worker's lock goes with its connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from services.segment.assignment.runs import activate, active_run_id, load_run
from services.segment.features import compute_features_in_parts, load_matrix
from services.segment.modeling.segmenter import Segmenter
from services.segment.scoring.clv_scores import score_customers
from services.segment.settings import SegmentSettings
from services.segment.training import store
from shared.db import session_scope

log = logging.getLogger(__name__)
LOCK_CLASS = 0x5E6  # advisory lock namespace of segmentation runs (the other key: tenant)


class RunBusyError(RuntimeError):
    """Another run of the same tenant is training; this one is retried later."""


@contextmanager
def tenant_lock(engine: Engine, tenant_id: int) -> Iterator[None]:
    with engine.connect() as connection:
        got = connection.execute(
            text("SELECT pg_try_advisory_lock(:c, :t)"), {"c": LOCK_CLASS, "t": tenant_id}
        ).scalar_one()
        connection.commit()
        if not got:
            raise RunBusyError(f"tenant {tenant_id} is training another run")
        try:
            yield
        finally:
            connection.execute(
                text("SELECT pg_advisory_unlock(:c, :t)"), {"c": LOCK_CLASS, "t": tenant_id}
            )
            connection.commit()


def train_run(engine: Engine, settings: SegmentSettings, run_id: int) -> None:
    with session_scope(engine) as session:
        run = store.load_pending(session, run_id)
    if run is None:
        return  # done already, or deleted
    with tenant_lock(engine, run.tenant_id):
        try:
            _train(engine, settings, run)
        except Exception as exc:
            with session_scope(engine) as session:
                store.mark_failed(session, run_id, f"{type(exc).__name__}: {exc}")
            raise


def _train(engine: Engine, settings: SegmentSettings, run: store.RunRequest) -> None:
    as_of = datetime.now(UTC)
    with session_scope(engine) as session:
        store.mark_running(session, run.id)
    compute_features_in_parts(
        engine,
        tenant_id=run.tenant_id,
        feature_set=run.feature_set,
        as_of=as_of,
        parts=settings.segment_feature_parts,
    )
    with session_scope(engine) as session:
        store.progress(session, run.id, 0.4, "features")
    # The features carry the purchase history that the CLV models are fitted on; the
    # fresh scores go into the matrix (their columns were read as last scored).
    with session_scope(engine) as session:
        matrix = load_matrix(session, tenant_id=run.tenant_id, feature_set=run.feature_set)
        clv = score_customers(
            session,
            tenant_id=run.tenant_id,
            matrix=matrix,
            as_of=as_of,
            horizon_days=settings.clv_horizon_days,
            discount_rate=settings.clv_discount_rate,
        )
        clv.apply(matrix)
        store.progress(session, run.id, 0.5, "clv")
    with session_scope(engine) as session:
        previous = store.previous_run(session, run.tenant_id)
    revenue, value = store.revenue_and_clv(matrix)
    if len(matrix) < 2:
        raise ValueError(f"{len(matrix)} customers with features: nothing to segment")
    segmenter = Segmenter(**run.model_params(settings)).fit(
        matrix.values, feature_names=matrix.names
    )
    with session_scope(engine) as session:
        store.progress(session, run.id, 0.7, "fitted")
    keys = segmenter.assign_keys(
        matrix.customer_pks.tolist(),
        previous_members=previous.members if previous else None,
        previous_centroids=previous.centroids if previous else None,
        used_keys=previous.used_keys if previous else (),
    )
    explanation = segmenter.explain(matrix.values, revenue=revenue, clv=value)
    result: dict[str, Any] = {
        "segmenter": segmenter,
        "keys": keys,
        "explanation": explanation,
        "projection": segmenter.project(matrix.values),
        "clv": clv.params,
        "as_of": as_of,
        "matrix": matrix,
        "previous_run_id": previous.run_id if previous else None,
    }
    with session_scope(engine) as session:
        store.save_result(session, run, result)
    if _promote(run, settings, segmenter.metrics_, keys.adjusted_rand_index):
        with session_scope(engine) as session:
            loaded = load_run(session, run.id)
            assert loaded is not None
            moved = activate(session, loaded, reason=f"retrain: run {run.id}", matrix=matrix)
            store.progress(session, run.id, 1.0, f"activated; {moved} customers changed segment")
    log.info("segmentation run %d trained (%d customers)", run.id, len(matrix))


def _promote(
    run: store.RunRequest, settings: SegmentSettings, metrics: dict[str, Any], ari: float | None
) -> bool:
    """Explicit, or automatic when the run is good and (against the last one) stable."""
    if run.promote != "auto":
        return run.promote == "always"
    silhouette = metrics.get("silhouette")
    good = silhouette is None or silhouette >= settings.segment_promote_min_silhouette
    stable = ari is None or ari >= settings.segment_promote_min_ari
    return good and stable


def activate_run(engine: Engine, run_id: int) -> int:
    """Activation asked for through the API; the number of customers who changed."""
    with session_scope(engine) as session:
        run = load_run(session, run_id)
        if run is None or active_run_id(session, run.tenant_id) == run_id:
            return 0
        return activate(session, run, reason=f"activated: run {run_id}")
