"""One anomaly run, end to end: a long job (`shared.reliable.long_job`) on segment.runs.

Single per tenant (the kind's advisory lock), restartable (a re-delivered job reads its
row and works it again from the start: flags are written only with the run's success)
and stoppable at its stage boundaries. It stores only news: a customer flagged for the
same kind by an earlier run whose window overlaps this one's is counted as
``continuing``, not flagged twice. The population score of every customer with a
feature vector is also written to ``customer_score.anomaly``.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from services.segment.anomalies import runs
from services.segment.anomalies.data import load_behaviour
from services.segment.anomalies.detect import detect_customers, population_flags
from services.segment.anomalies.population import population_scores
from services.segment.anomalies.runs import ANOMALY, AnomalyRequest, AnomalyResult
from services.segment.anomalies.segments import segment_alerts
from services.segment.features import load_matrix
from services.segment.scoring.anomaly import store_anomalies
from services.segment.settings import SegmentSettings
from shared.db import session_scope
from shared.runs import ArtifactMetadata, DataWindow, RunCancelled, library_versions

log = logging.getLogger(__name__)


def detect_run(engine: Engine, settings: SegmentSettings, run_id: int) -> None:
    """Work the run ``run_id`` unless it is finished; `shared.runs.RunBusyError` while
    its tenant works another. An error leaves the run to the caller to mark failed."""
    with session_scope(engine) as session:
        run = runs.load_request(session, run_id)
    if run is None:
        return
    with ANOMALY.single_runner(engine, run.tenant_id):
        try:
            _detect(engine, settings, run)
        except RunCancelled:
            with session_scope(engine) as session:
                runs.mark_cancelled(session, run.id)
            log.info("anomaly run %d cancelled", run.id)


def _detect(engine: Engine, settings: SegmentSettings, run: AnomalyRequest) -> None:
    params = run.params
    as_of = params.as_of or datetime.now(UTC)
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    with session_scope(engine) as session:
        runs.mark_running(session, run.id)
    with session_scope(engine) as session:
        behaviour = load_behaviour(
            session,
            tenant_id=run.tenant_id,
            as_of=as_of,
            window_days=params.window_days,
            history_windows=params.history_windows,
        )
        matrix = load_matrix(
            session, tenant_id=run.tenant_id, feature_set=settings.segment_feature_set
        )
        runs.stage_done(session, run.id, 0.3, "loaded")
    flags = detect_customers(behaviour, params)
    scores, ranks = population_scores(matrix.values, seed=params.seed)
    flags += population_flags(matrix.customer_pks, scores, ranks, params.population_share)
    window_start = as_of - timedelta(days=params.window_days)
    with session_scope(engine) as session:
        alerts = segment_alerts(
            session,
            tenant_id=run.tenant_id,
            z=params.segment_z,
            min_history=params.segment_min_history,
        )
        seen = runs.already_flagged(
            session, tenant_id=run.tenant_id, run_id=run.id, start=window_start, end=as_of
        )
        runs.stage_done(session, run.id, 0.7, "detected")
    detected = len(flags)
    flags = [flag for flag in flags if (flag.customer_pk, str(flag.kind)) not in seen]
    by_kind = Counter(str(flag.kind) for flag in flags)
    metadata = ArtifactMetadata(
        kind=ANOMALY.name,
        data_window=DataWindow(
            as_of=as_of,
            start=as_of - timedelta(days=params.window_days * (params.history_windows + 1)),
            rows=len(behaviour.customer_pks),
            vectors=len(matrix),
        ),
        feature_set=matrix.feature_set,
        features=matrix.names,
        parameters=params.stored(),
        metrics={
            "customers": len(behaviour.customer_pks),
            "flagged": len({flag.customer_pk for flag in flags}),
            "flags_by_kind": dict(sorted(by_kind.items())),
            # Flagged again for a window an earlier run's flag already covers: not stored.
            "continuing": detected - len(flags),
            "segment_alerts": len(alerts),
        },
        library_versions=library_versions(),
        seed=params.seed,
    )
    result = AnomalyResult(
        as_of=as_of,
        window_start=window_start,
        flags=flags,
        alerts=alerts,
        metadata=metadata,
    )
    with session_scope(engine) as session:
        runs.save_result(session, run, result)
        if len(matrix):
            store_anomalies(session, tenant_id=run.tenant_id, pks=matrix.customer_pks, scores=ranks)
    log.info("anomaly run %d: %d flags, %d segment alerts", run.id, len(flags), len(alerts))
