"""A prediction run's life against the real database: asked for, trained by the long-job
runner (what the Celery task calls) from its outbox row, succeeded with its figures and
scores, made active, replaced, backtested, failed, cancelled and scheduled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text

from services.segment.predictions import pipeline, runs
from services.segment.predictions.data import Model
from services.segment.predictions.model import PropensityModel, Reasons
from services.segment.predictions.pipeline import train_prediction
from services.segment.predictions.runs import PredictionParams
from services.segment.predictions.schedule import schedule_predictions
from services.segment.settings import SegmentSettings
from shared.contracts import SEGMENT_TRAIN_PREDICTION
from shared.db import session_scope
from shared.reliable import LongJobRunner, Subject
from shared.runs import ArtifactMetadata, DataWindow
from tests.segment.prediction_shop import NOW, build_history_shop, new_tenant

pytestmark = [pytest.mark.integration]
SETTINGS = SegmentSettings(prediction_horizon_days=60, segment_seed=5)


def one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).one_or_none()


def ask(engine: Engine, tenant_id: int, model: Model = "churn", **extra: Any) -> int:
    with session_scope(engine) as session:
        params = PredictionParams.resolve(SETTINGS, model=model, **extra)
        return runs.create_run(session, tenant_id=tenant_id, params=params, max_in_flight=3)


def deliver(engine: Engine, run_id: int) -> None:
    """What the Celery task does with the run's outbox row."""

    def job(db: Engine, subject: Subject) -> None:
        train_prediction(db, SETTINGS, subject.subject_id)

    outbox = one(
        engine,
        "SELECT id FROM outbox WHERE task_name = :n AND subject_id = :r",
        n=SEGMENT_TRAIN_PREDICTION,
        r=run_id,
    )
    LongJobRunner(engine, SEGMENT_TRAIN_PREDICTION, job, 3, runs.give_up).run([outbox.id])


def run_row(engine: Engine, run_id: int) -> Any:
    return one(engine, "SELECT * FROM prediction_run WHERE id = :r", r=run_id)


@pytest.fixture(scope="module")
def shop_tenant(engine: Engine) -> int:
    return build_history_shop(engine, customers=600, seed=21).tenant_id


def test_a_run_succeeds_with_its_figures_and_scores(engine: Engine, shop_tenant: int) -> None:
    run_id = ask(engine, shop_tenant)
    assert run_row(engine, run_id).status == "pending"
    deliver(engine, run_id)
    run = run_row(engine, run_id)
    assert run.status == "succeeded", run.error
    assert run.progress == 1.0
    assert run.active
    assert run.as_of is not None
    metrics = run.metrics
    assert metrics["auc"] > 0.75
    assert set(metrics["baselines"]) == {"recency_only", "bgnbd_expected_purchases"}
    assert 0 <= metrics["ece"] <= 1
    assert metrics["calibration"] in {"none", "isotonic", "sigmoid"}
    # Trained on four stacked cut-offs, validated and calibrated on the latest.
    assert len(metrics["training_cut_offs"]) == 4
    assert len(metrics["training_base_rates"]) == 4
    assert metrics["split"] == "time"
    assert metrics["served"] in {"model", "recency_only", "bgnbd_expected_purchases"}
    assert metrics["backtest"] is None  # the horizon after now is still to come
    assert run.artifact["reliability"]["calibrated"]
    assert len(run.artifact["lift"]) == 10
    window = run.data_window
    assert window["rows"] > 0
    assert window["scored"] > 0
    assert "scikit-learn" in run.library_versions
    # Every buyer is scored, with reasons naming real features; the view's churn agrees.
    buyers = one(
        engine,
        "SELECT count(DISTINCT customer_pk) AS n FROM orders WHERE tenant_id = :t",
        t=shop_tenant,
    ).n
    scores = one(
        engine,
        "SELECT count(*) AS n, min(probability) AS lo, max(probability) AS hi,"
        " count(*) FILTER (WHERE jsonb_array_length(reasons) > 0) AS explained"
        " FROM prediction_score WHERE run_id = :r",
        r=run_id,
    )
    assert scores.n == buyers == window["scored"]
    assert 0 <= scores.lo < scores.hi <= 1
    assert scores.explained > 0.9 * scores.n
    mismatched = one(
        engine,
        "SELECT count(*) AS n FROM prediction_score p JOIN customer_score s USING (customer_pk)"
        " WHERE p.run_id = :r AND s.churn IS DISTINCT FROM p.probability",
        r=run_id,
    )
    assert mismatched.n == 0
    # A re-delivery of the finished run does nothing.
    with session_scope(engine) as session:
        assert runs.load_request(session, run_id) is None


def test_a_new_run_replaces_the_active_one_and_a_backtest_never_does(
    engine: Engine, shop_tenant: int
) -> None:
    first = ask(engine, shop_tenant, "purchase_propensity")
    deliver(engine, first)
    second = ask(engine, shop_tenant, "purchase_propensity")
    deliver(engine, second)
    backtest = ask(engine, shop_tenant, "purchase_propensity", as_of=NOW - timedelta(days=90))
    deliver(engine, backtest)
    assert not run_row(engine, first).active
    assert run_row(engine, second).active
    past = run_row(engine, backtest)
    assert past.status == "succeeded", past.error
    assert not past.active
    # Its horizon is over: it is measured against what the customers then did.
    measured = past.metrics["backtest"]
    assert measured["auc"] > 0.7
    assert set(measured["baselines"]) == {"recency_only", "bgnbd_expected_purchases"}
    assert past.artifact["backtest_lift"]
    spend = one(
        engine,
        "SELECT min(expected_spend) AS lo, count(expected_spend) AS n FROM prediction_score"
        " WHERE run_id = :r",
        r=second,
    )
    assert spend.lo >= 0
    assert spend.n > 0


def test_a_tenant_without_history_fails_with_the_reason(engine: Engine) -> None:
    tenant_id = new_tenant(engine)
    run_id = ask(engine, tenant_id)
    deliver(engine, run_id)
    run = run_row(engine, run_id)
    assert run.status == "failed"
    assert "labelled customers" in run.error
    assert not run.active
    left = one(engine, "SELECT count(*) AS n FROM outbox WHERE subject_id = :r", r=run_id)
    assert left.n == 0


def test_a_cancelled_run_is_not_trained(engine: Engine, shop_tenant: int) -> None:
    run_id = ask(engine, shop_tenant)
    with session_scope(engine) as session:
        session.execute(
            text("UPDATE prediction_run SET status = 'cancelled' WHERE id = :r"), {"r": run_id}
        )
    deliver(engine, run_id)
    assert run_row(engine, run_id).status == "cancelled"
    scored = one(engine, "SELECT count(*) AS n FROM prediction_score WHERE run_id = :r", r=run_id)
    assert scored.n == 0


def test_the_schedule_asks_for_both_models_once(engine: Engine) -> None:
    shop = build_history_shop(engine, customers=50, seed=3)
    settings = SETTINGS.model_copy(update={"prediction_retrain_every_s": 3600})
    with session_scope(engine) as session:
        created = schedule_predictions(session, settings)
    mine = one(
        engine,
        "SELECT array_agg(model ORDER BY model) AS models, array_agg(id) AS ids"
        " FROM prediction_run WHERE tenant_id = :t",
        t=shop.tenant_id,
    )
    assert mine.models == ["churn", "purchase_propensity"]
    assert set(mine.ids) <= set(created)
    with session_scope(engine) as session:
        again = schedule_predictions(session, settings)
    assert not set(again) & set(mine.ids)
    count = one(
        engine, "SELECT count(*) AS n FROM prediction_run WHERE tenant_id = :t", t=shop.tenant_id
    )
    assert count.n == 2  # in flight already: not asked for again
    params = run_row(engine, mine.ids[0]).params
    assert params["requested_by"] == "schedule"
    assert params["horizon_days"] == 60


def test_a_customer_erased_while_the_run_trained_is_not_stored(engine: Engine) -> None:
    shop = build_history_shop(engine, customers=3, seed=2)
    kept, erased = shop.customer_pks[0], shop.customer_pks[1]
    run_id = ask(engine, shop.tenant_id)
    with session_scope(engine) as session:
        request = runs.load_request(session, run_id)
        assert request is not None
        runs.mark_running(session, run_id)
        session.execute(text("DELETE FROM customer WHERE id = :pk"), {"pk": erased})
        names = ["recency_days", "frequency"]
        result = runs.PredictionResult(
            as_of=NOW,
            customer_pks=np.array([kept, erased], dtype=np.int64),
            probability=np.array([0.2, 0.9]),
            expected_spend=None,
            reasons=Reasons(
                features=np.array([[0, -1, -1], [1, 0, -1]]),
                values=np.array([[12.0, 0, 0], [3.0, 40.0, 0]]),
                pushes=np.array([[0.1, 0, 0], [0.3, -0.05, 0]]),
                seconds=0.0,
            ),
            artifact={},
            metadata=ArtifactMetadata(
                kind="prediction:churn",
                data_window=DataWindow(as_of=NOW),
                feature_set="v1",
                features=names,
                seed=5,
            ),
        )
        runs.save_result(session, request, result)
    stored = one(
        engine,
        "SELECT array_agg(customer_pk) AS pks, min(reasons::text) AS reasons"
        " FROM prediction_score WHERE run_id = :r",
        r=run_id,
    )
    assert stored.pks == [kept]
    assert '"feature": "recency_days"' in stored.reasons
    assert run_row(engine, run_id).status == "succeeded"


class _Stump(PropensityModel):
    """One split of one tree: it cannot rank as well as recency."""

    def __init__(self, *, seed: int = 7) -> None:
        super().__init__(seed=seed, max_iter=1, max_leaf_nodes=2)


def test_a_model_worse_than_a_baseline_serves_the_baseline(
    engine: Engine, shop_tenant: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "PropensityModel", _Stump)
    run_id = ask(engine, shop_tenant)
    deliver(engine, run_id)
    run = run_row(engine, run_id)
    assert run.status == "succeeded", run.error
    metrics = run.metrics
    served = metrics["served"]
    assert served in {"recency_only", "bgnbd_expected_purchases"}
    assert metrics["boosted_auc"] < metrics["baselines"][served]["auc"]
    assert f"below {served}'s" in metrics["served_because"]
    assert metrics["auc"] > metrics["boosted_auc"]  # the figures are the served score's
    assert run.active
    # The stored scores are the baseline's, calibrated: the more days since the last
    # order (recency) or the fewer purchases expected, the likelier the churn.
    feature = pipeline.BASELINE_FEATURES[served]
    stored = one(
        engine,
        "SELECT array_agg(probability ORDER BY customer_pk) AS p,"
        " array_agg((reasons->0->>'value')::float8 ORDER BY customer_pk) AS v,"
        " bool_and(reasons->0->>'feature' = :f OR jsonb_array_length(reasons) = 0) AS named,"
        " count(*) FILTER (WHERE jsonb_array_length(reasons) > 0) AS explained, count(*) AS n"
        " FROM prediction_score WHERE run_id = :r",
        r=run_id,
        f=feature,
    )
    assert stored.named
    assert stored.explained == stored.n
    ordered = [p for _, p in sorted(zip(stored.v, stored.p, strict=True))]
    if served == "recency_only":
        assert ordered == sorted(ordered)
    else:
        assert ordered == sorted(ordered, reverse=True)
    assert "baseline" in metrics["reasons_method"]
