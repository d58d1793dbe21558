"""One prediction run, end to end: a long job driven by its row, as segmentation runs are.

Training data: stacked cut-offs ``as_of - horizon - k * step`` (see
`services.segment.predictions.data.training_cut_offs`), each with features as of itself and
what each customer then did in the horizon after it, never past ``as_of``. Scoring:
features as of ``as_of``. When the horizon after ``as_of`` has passed already (a backtest),
the run also measures its scores against what really happened.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine

from services.segment.modeling.threads import limit_threads
from services.segment.predictions import metrics, runs
from services.segment.predictions.data import (
    CutOff,
    Model,
    Training,
    load_cut_off,
    load_outcome,
    load_training,
)
from services.segment.predictions.model import (
    PropensityModel,
    Reasons,
    Validation,
    top_reasons,
)
from services.segment.predictions.runs import PREDICTION, PredictionRequest, PredictionResult
from services.segment.settings import SegmentSettings
from shared.db import session_scope
from shared.runs import ArtifactMetadata, DataWindow, RunCancelled

log = logging.getLogger(__name__)


def train_prediction(engine: Engine, settings: SegmentSettings, run_id: int) -> None:
    """Train and score the run ``run_id`` unless it is finished; `shared.runs.RunBusyError`
    while its tenant trains another prediction run."""
    with session_scope(engine) as session:
        run = runs.load_request(session, run_id)
    if run is None:
        return
    with PREDICTION.single_runner(engine, run.tenant_id):
        try:
            _train(engine, settings, run)
        except RunCancelled:
            with session_scope(engine) as session:
                runs.mark_cancelled(session, run.id)
            log.info("prediction run %d cancelled", run.id)


def baseline_scores(cut: CutOff, model: Model) -> dict[str, NDArray[np.float64]]:
    """The naive scores the model must beat, oriented so that higher means the event."""
    sign = 1.0 if model == "churn" else -1.0
    scores = {"recency_only": sign * cut.column("recency_days")}
    if cut.bgnbd is not None:
        scores["bgnbd_expected_purchases"] = -sign * cut.column("bgnbd_expected_purchases")
    return scores


# The feature each baseline score is made of (its reason when the run serves it).
BASELINE_FEATURES = {
    "recency_only": "recency_days",
    "bgnbd_expected_purchases": "bgnbd_expected_purchases",
}


def stacked_baselines(training: Training, model: Model) -> dict[str, NDArray[np.float64]]:
    """`baseline_scores` of every stacked cut-off, one block after the other; a baseline
    that one cut-off lacks (no BG/NBD fit) is left out."""
    per_cut = [baseline_scores(cut, model) for cut in training.cut_offs]
    names = set.intersection(*(set(scores) for scores in per_cut))
    return {name: np.concatenate([scores[name] for scores in per_cut]) for name in names}


def baseline_reasons(
    model: PropensityModel, scoring: CutOff, reference: NDArray[np.float64], kind: Model
) -> Reasons:
    """Where a baseline is served, its one feature is every customer's reason. Its push is
    the probability for the customer's value minus that for the feature's training
    median, by the baseline's sigmoid calibration (smooth, where the isotonic one is a
    staircase that would flatten the differences into its steps)."""
    started = time.perf_counter()
    name = BASELINE_FEATURES[model.served_]
    j = scoring.names.index(name)
    values = scoring.values[:, j]
    sign = 1.0 if kind == "churn" else -1.0
    if model.served_ == "bgnbd_expected_purchases":
        sign = -sign
    smooth = model.baseline_calibrators_["sigmoid"]
    push = smooth.predict(sign * values) - smooth.predict(np.array([sign * reference[j]]))[0]
    n = len(values)
    features = np.full((n, runs.REASONS), -1, dtype=np.int64)
    features[:, 0] = j
    found_values = np.zeros((n, runs.REASONS))
    found_values[:, 0] = values
    pushes = np.zeros((n, runs.REASONS))
    pushes[:, 0] = np.round(push, 4)
    return Reasons(features, found_values, pushes, time.perf_counter() - started)


def _stage(engine: Engine, run: PredictionRequest, value: float, stage: str) -> None:
    with session_scope(engine) as session:
        runs.stage_done(session, run.id, value, stage)


def _train(engine: Engine, settings: SegmentSettings, run: PredictionRequest) -> None:
    params = run.params
    as_of = params.as_of.astimezone(UTC) if params.as_of else datetime.now(UTC)
    with session_scope(engine) as session:
        runs.mark_running(session, run.id)
    _stage(engine, run, 0.05, "started")
    with session_scope(engine) as session:
        training = load_training(
            session,
            tenant_id=run.tenant_id,
            as_of=as_of,
            feature_set=params.feature_set,
            model=params.model,
            horizon_days=params.horizon_days,
            seed=params.seed,
        )
    _stage(engine, run, 0.3, "training data")
    with limit_threads(settings.segment_threads):
        model = PropensityModel(seed=params.seed).fit(
            training.values,
            training.labels,
            baselines=stacked_baselines(training, params.model),
            groups=training.groups,
            customers=training.customer_pks,
        )
    _stage(engine, run, 0.6, "fitted")
    scoring = _cut_off(engine, run, as_of)
    _stage(engine, run, 0.75, "scoring data")
    reference = np.median(training.values, axis=0)
    with limit_threads(settings.segment_threads):
        served = baseline_scores(scoring, params.model)
        probability = model.predict_proba(scoring.values, served)
        if model.served_ == "model":
            reasons = top_reasons(model, scoring.values, reference=reference, top=runs.REASONS)
        else:
            reasons = baseline_reasons(model, scoring, reference, params.model)
    backtest = _backtest(engine, run, scoring, probability, as_of)
    result = PredictionResult(
        as_of=as_of,
        customer_pks=scoring.customer_pks,
        probability=np.round(probability, 6),
        expected_spend=_expected_spend(scoring, probability, params.model),
        reasons=reasons,
        artifact=_artifact(model.validation_, training.latest, scoring, backtest),
        metadata=ArtifactMetadata(
            kind=f"prediction:{params.model}",
            data_window=DataWindow(
                as_of=as_of,
                start=training.cut_offs[-1].as_of,
                rows=len(training),
                label_window_end=as_of,
                scored=len(scoring),
            ),
            feature_set=params.feature_set,
            features=scoring.names,
            parameters={**params.stored(), **_estimator_params(model)},
            metrics={
                **model.validation_.metrics,
                "training_cut_offs": [cut.as_of.isoformat() for cut in training.cut_offs],
                "training_base_rates": training.base_rates,
                "fit_seconds": round(model.fit_seconds_, 3),
                "reasons_seconds": round(reasons.seconds, 3),
                "reasons_method": (
                    "occlusion with the training median, one feature at a time"
                    if model.served_ == "model"
                    else "the served baseline's feature against its training median"
                ),
                "backtest": _summary(backtest),
            },
            baselines=model.validation_.baselines,
            seed=params.seed,
        ),
    )
    with session_scope(engine) as session:
        runs.save_result(session, run, result)
    log.info("prediction run %d scored %d customers", run.id, len(scoring))


def _cut_off(engine: Engine, run: PredictionRequest, at: datetime) -> CutOff:
    with session_scope(engine) as session:
        return load_cut_off(
            session,
            tenant_id=run.tenant_id,
            as_of=at,
            feature_set=run.params.feature_set,
            model=run.params.model,
            horizon_days=run.params.horizon_days,
            seed=run.params.seed,
        )


def _backtest(
    engine: Engine,
    run: PredictionRequest,
    scoring: CutOff,
    probability: NDArray[np.float64],
    as_of: datetime,
) -> dict[str, Any] | None:
    """The scores against what happened in the horizon after ``as_of``, when it is over."""
    horizon = run.params.horizon_days
    if as_of + timedelta(days=horizon) > datetime.now(UTC):
        return None
    with session_scope(engine) as session:
        outcome = load_outcome(
            session, tenant_id=run.tenant_id, cut_off=scoring, horizon_days=horizon
        )
    y = outcome.label(run.params.model)
    if len(set(y.tolist())) < 2:
        return {"customers": len(y), "note": "one outcome only: nothing to rank"}
    return {
        "customers": len(y),
        "base_rate": round(float(y.mean()), 4),
        **metrics.ranking(y, probability),
        **metrics.calibration(y, probability),
        "baselines": {
            name: metrics.ranking(y, score)
            for name, score in baseline_scores(scoring, run.params.model).items()
        },
        "reliability": metrics.reliability_curve(y, probability),
        "lift": metrics.lift(y, probability),
    }


def _summary(backtest: dict[str, Any] | None) -> dict[str, Any] | None:
    """The backtest's figures; its curves go to the artifact."""
    if backtest is None:
        return None
    return {k: v for k, v in backtest.items() if k not in ("reliability", "lift")}


def _expected_spend(
    scoring: CutOff, probability: NDArray[np.float64], model: Model
) -> NDArray[np.float64] | None:
    """Purchase propensity x the customer's mean order value (the buyers' mean for a
    customer without orders): what they are expected to spend in the horizon."""
    if model != "purchase_propensity":
        return None
    aov = scoring.column("avg_order_value")
    bought = scoring.column("has_orders") > 0
    mean = float(aov[bought].mean()) if bought.any() else 0.0
    return np.round(probability * np.where(bought, aov, mean), 2)


def _estimator_params(model: PropensityModel) -> dict[str, Any]:
    return {
        "estimator": "HistGradientBoostingClassifier",
        "max_iter": model.max_iter,
        "learning_rate": model.learning_rate,
        "max_leaf_nodes": model.max_leaf_nodes,
        "l2_regularization": model.l2_regularization,
    }


def _artifact(
    validation: Validation, training: CutOff, scoring: CutOff, backtest: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "reliability": validation.reliability,
        "lift": validation.lift,
        "split": validation.sizes,
        "bgnbd": {"training": training.bgnbd, "scoring": scoring.bgnbd},
        "backtest_reliability": backtest.get("reliability") if backtest else None,
        "backtest_lift": backtest.get("lift") if backtest else None,
    }
