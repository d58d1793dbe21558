"""The demo's churn report header says what the run served (``segmenta demo`` prints it)."""

from __future__ import annotations

from typing import Any

from segmenta.churn_report import report_title

BASELINES = {"recency_only": {"auc": 0.71}, "bgnbd_expected_purchases": {"auc": 0.69}}


def _run(served: str) -> dict[str, Any]:
    metrics = {"auc": 0.74, "ece": 0.02, "calibration": "isotonic", "served": served}
    return {"id": 7, "metrics": {**metrics, "baselines": BASELINES}}


def test_a_served_model_is_compared_with_both_baselines() -> None:
    title = report_title(_run("model"))
    assert "run 7" in title
    assert "AUC 0.74" in title
    assert "recency alone 0.71" in title
    assert "BG/NBD expected purchases 0.69" in title
    assert "serving the baseline" not in title


def test_a_served_baseline_is_named_not_passed_off_as_the_model() -> None:
    title = report_title(_run("bgnbd_expected_purchases"))
    assert "serving the baseline BG/NBD expected purchases" in title
    assert "AUC 0.74" not in title  # the boosted model's figure is not what is served
