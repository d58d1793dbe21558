"""The reward model doubly robust estimation needs when the caller has none.

Without context columns: each action's mean reward in the log (an action never logged
gets the overall mean). With context: a ridge regression per action on the context,
falling back to the action's mean when the action has fewer rows than ``min_rows``.
Fitted on the same log it corrects; DR stays unbiased whatever the model (its error only
costs variance), so a simple model is the right trade for an analyst's CSV.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def predict_rewards(
    codes: IntArray,
    reward: FloatArray,
    n_actions: int,
    context: FloatArray | None = None,
    *,
    ridge: float = 1.0,
    min_rows: int = 10,
) -> FloatArray:
    """``q[i, a]``: the predicted reward of action ``a`` for row ``i``."""
    overall = float(reward.mean())
    counts = np.bincount(codes, minlength=n_actions)
    sums = np.bincount(codes, weights=reward, minlength=n_actions)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
    predictions = np.tile(means, (len(reward), 1))
    if context is None or context.shape[1] == 0:
        return predictions
    for action in range(n_actions):
        rows = codes == action
        if counts[action] >= min_rows:
            # Imported here: the API process that loads this module never fits a model.
            from sklearn.linear_model import Ridge  # type: ignore[import-untyped]

            model = Ridge(alpha=ridge).fit(context[rows], reward[rows])
            predictions[:, action] = model.predict(context)
    return predictions
