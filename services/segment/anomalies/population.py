"""Population outliers: customers unlike everyone else, by IsolationForest on their
feature vectors (scikit-learn's contract: numpy in, numbers out, no database)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]
from sklearn.preprocessing import RobustScaler  # type: ignore[import-untyped]


def population_scores(
    values: NDArray[np.float64], *, seed: int, n_estimators: int = 200
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each row's isolation score (higher: easier to isolate, more unusual; about 0.5
    for a typical row) and its rank among the rows, 0 (most typical) .. 1.

    The features are robust-scaled first (median and IQR), so a feature on a large
    scale (spend) does not make every split; missing values count as 0, the feature
    sets' own "none"."""
    n = len(values)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    clean = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if n < 8:  # too few to tell anyone apart
        return np.full(n, 0.5), np.zeros(n)
    scaled = RobustScaler(quantile_range=(10.0, 90.0)).fit_transform(clean)
    forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(scaled)
    scores = np.asarray(-forest.score_samples(scaled), dtype=np.float64)
    ranks = scores.argsort(kind="stable").argsort(kind="stable")
    return scores, np.asarray(ranks / max(n - 1, 1), dtype=np.float64)
