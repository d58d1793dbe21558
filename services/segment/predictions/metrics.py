"""How good a probability is: ranking (AUC, PR-AUC), calibration (ECE, Brier, the
reliability curve) and the lift a marketer gets from targeting the top of the list."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import (  # type: ignore[import-untyped]
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)

CALIBRATION_BINS = 10
LIFT_BINS = 10


def ranking(y: ArrayLike, score: ArrayLike) -> dict[str, float]:
    """AUC and PR-AUC (average precision) of ``score`` for the positives of ``y``."""
    labels, scores = np.asarray(y), np.asarray(score, dtype=np.float64)
    return {
        "auc": round(float(roc_auc_score(labels, scores)), 4),
        "pr_auc": round(float(average_precision_score(labels, scores)), 4),
    }


def reliability_curve(
    y: ArrayLike, probability: ArrayLike, bins: int = CALIBRATION_BINS
) -> list[dict[str, float]]:
    """Per equal-width bin of predicted probability that holds customers: its mean
    prediction, the observed rate of the event and how many customers it holds."""
    labels = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    which = np.minimum((p * bins).astype(int), bins - 1)
    curve = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            curve.append(
                {
                    "predicted": round(float(p[inside].mean()), 4),
                    "observed": round(float(labels[inside].mean()), 4),
                    "count": int(inside.sum()),
                }
            )
    return curve


def expected_calibration_error(
    y: ArrayLike, probability: ArrayLike, bins: int = CALIBRATION_BINS
) -> float:
    """The customers' share-weighted mean gap between predicted and observed rates over
    ``bins`` equal-width bins (0: perfectly calibrated)."""
    labels = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    if not len(p):
        return 0.0
    which = np.minimum((p * bins).astype(int), bins - 1)
    gap = 0.0
    for b in np.unique(which):
        inside = which == b
        gap += inside.sum() * abs(p[inside].mean() - labels[inside].mean())
    return float(gap / len(p))


def calibration(y: ArrayLike, probability: ArrayLike) -> dict[str, float]:
    labels = np.asarray(y)
    p = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    return {
        "ece": round(expected_calibration_error(labels, p), 4),
        "brier": round(float(brier_score_loss(labels, p)), 4),
    }


def lift(y: ArrayLike, score: ArrayLike, bins: int = LIFT_BINS) -> list[dict[str, Any]]:
    """Customers ranked by ``score``, highest first, cut into ``bins`` equal groups: each
    group's observed rate, its lift over the base rate and the cumulative share of all
    positives caught down to it (the gains curve)."""
    labels = np.asarray(y, dtype=np.float64)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    ranked = labels[order]
    base = float(ranked.mean()) if len(ranked) else 0.0
    positives = float(ranked.sum())
    rows, caught = [], 0.0
    for b, group in enumerate(np.array_split(ranked, bins), start=1):
        if not len(group):
            continue
        rate = float(group.mean())
        caught += float(group.sum())
        rows.append(
            {
                "decile": b,
                "rate": round(rate, 4),
                "lift": round(rate / base, 3) if base else None,
                "cumulative_gain": round(caught / positives, 4) if positives else None,
            }
        )
    return rows
