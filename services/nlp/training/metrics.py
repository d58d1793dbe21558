"""Accuracy and macro-F1 in numpy, shared by the training run and the quality benchmark."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def accuracy(truth: Sequence[int] | IntArray, predicted: Sequence[int] | IntArray) -> float:
    y, p = np.asarray(truth), np.asarray(predicted)
    return float((y == p).mean()) if len(y) else float("nan")


def macro_f1(
    truth: Sequence[int] | IntArray,
    predicted: Sequence[int] | IntArray,
    labels: Sequence[int],
) -> float:
    """Unweighted mean of per-label F1 over ``labels`` (a label never seen nor predicted: 0)."""
    y, p = np.asarray(truth), np.asarray(predicted)
    scores = []
    for label in labels:
        true_positive = float(np.sum((y == label) & (p == label)))
        predicted_count, actual_count = float(np.sum(p == label)), float(np.sum(y == label))
        denominator = predicted_count + actual_count
        scores.append(2 * true_positive / denominator if denominator else 0.0)
    return float(np.mean(scores)) if scores else float("nan")
