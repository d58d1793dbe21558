"""Off-policy evaluation: what would another policy have earned on the logged traffic?

From a decision log (the action shown, its reward, the probability the logging policy
gave it, and the probability the target policy would give it), three estimators of the
target's mean reward per decision, with ``w = target / logging``:

* IPS, ``mean(w r)``: unbiased, high variance when weights are large.
* Self-normalised IPS, ``sum(w r) / sum(w)``: slightly biased, much steadier.
* Doubly robust, ``mean(sum_a pi(a|x) q(x, a) + w (r - q(x, A)))``: unbiased if either
  the propensities or the reward model ``q`` are right, and lower variance when ``q`` is
  good. It needs the target's probability of every action: ``target_policy`` (rows x
  actions); without it the target is taken as context-free, each action's probability
  read off the rows that show it (if they disagree, DR is not computed and the report
  says why). Target mass on actions never logged is valued at the overall mean reward.

Each comes with a percentile bootstrap interval (rows resampled, ``seed`` fixed, the
reward model held fixed) and the report carries the effective sample size
``(sum w)^2 / sum w^2``: below ``min_ess_share`` of the rows (5 %) the log says little
about the target, and the report carries a warning, or `evaluate` raises
`LowEffectiveSampleSizeError` when asked to refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from services.personalize.modeling.reward_model import predict_rewards

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_BOOTSTRAP_CELLS = 4_000_000  # row indices drawn at once: ~32 MB, whatever the log's size


class LowEffectiveSampleSizeError(ValueError):
    pass


@dataclass(frozen=True)
class Estimate:
    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class OpeReport:
    ips: Estimate
    snips: Estimate
    dr: Estimate | None
    ess: float
    rows: int
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.warning is None:
            del data["warning"]
        return data


@dataclass(frozen=True)
class DecisionLog:
    """A validated log: actions coded 0..n_actions-1 in the order of ``actions``."""

    actions: list[Any]
    codes: IntArray
    reward: FloatArray
    logging_propensity: FloatArray
    target_probability: FloatArray

    @classmethod
    def from_arrays(
        cls,
        action: Sequence[Any] | ArrayLike,
        reward: ArrayLike,
        logging_propensity: ArrayLike,
        target_probability: ArrayLike,
    ) -> DecisionLog:
        labels, codes = np.unique(np.asarray(action), return_inverse=True)
        log = cls(
            labels.tolist(),
            codes.astype(np.int64).ravel(),
            _floats(reward, "reward"),
            _floats(logging_propensity, "logging_propensity"),
            _floats(target_probability, "target_probability"),
        )
        log._check()
        return log

    def _check(self) -> None:
        rows = len(self.codes)
        if rows == 0:
            raise ValueError("the log has no rows")
        for name in ("reward", "logging_propensity", "target_probability"):
            if len(getattr(self, name)) != rows:
                raise ValueError(f"{name}: expected {rows} values, one per action")
        if np.any((self.logging_propensity <= 0) | (self.logging_propensity > 1)):
            raise ValueError("logging_propensity: every value must be in (0, 1]")
        if np.any((self.target_probability < 0) | (self.target_probability > 1)):
            raise ValueError("target_probability: every value must be in [0, 1]")

    @property
    def weights(self) -> FloatArray:
        return self.target_probability / self.logging_propensity


def _floats(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: every value must be a finite number")
    return array


def effective_sample_size(weights: FloatArray) -> float:
    squares = float(np.sum(weights**2))
    return float(np.sum(weights)) ** 2 / squares if squares > 0 else 0.0


def evaluate(
    log: DecisionLog,
    *,
    target_policy: ArrayLike | None = None,
    reward_predictions: ArrayLike | None = None,
    context: ArrayLike | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_ess_share: float = 0.05,
    refuse_low_ess: bool = False,
) -> OpeReport:
    """IPS, SNIPS and DR of the target policy. ``target_policy`` and ``reward_predictions``
    are rows x actions, columns in the order of ``log.actions``; ``context`` (rows x
    features) lets the fitted reward model use the customer's features."""
    rows, weights = len(log.codes), log.weights
    ess = effective_sample_size(weights)
    warning = _ess_warning(ess, rows, min_ess_share, refuse_low_ess)
    pi = _target_matrix(log, target_policy)
    columns = [weights * log.reward, weights]
    if pi is not None:
        columns.append(_dr_terms(log, pi, _reward_matrix(log, reward_predictions, context)))
    elif warning is None:
        warning = (
            "dr: the target's probability differs between rows of one action; pass target_policy"
        )
    stacked = np.column_stack(columns)
    point, sums = stacked.sum(axis=0), _bootstrap_sums(stacked, n_bootstrap, seed)
    tail = (1.0 - confidence) / 2.0

    def interval(estimate: float, replicates: FloatArray) -> Estimate:
        low, high = np.nanquantile(replicates, [tail, 1.0 - tail])
        return Estimate(float(estimate), float(low), float(high))

    return OpeReport(
        ips=interval(point[0] / rows, sums[:, 0] / rows),
        snips=interval(_ratio(point[0], point[1]), _ratio(sums[:, 0], sums[:, 1])),
        dr=interval(point[2] / rows, sums[:, 2] / rows) if pi is not None else None,
        ess=ess,
        rows=rows,
        warning=warning,
    )


def _dr_terms(log: DecisionLog, pi: FloatArray, q: FloatArray) -> FloatArray:
    """Per row: the model's value of the target plus the weighted error on the logged action."""
    logged_q = q[np.arange(len(log.codes)), log.codes]
    direct = np.sum(pi * q, axis=1) + (1.0 - pi.sum(axis=1)) * float(log.reward.mean())
    return np.asarray(direct + log.weights * (log.reward - logged_q), dtype=np.float64)


def _ratio(numerator: Any, denominator: Any) -> Any:
    """SNIPS is undefined (NaN) where the weights sum to 0: a resample, or a whole log, in
    which the target never picks the logged action."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _ess_warning(ess: float, rows: int, min_share: float, refuse: bool) -> str | None:
    if ess >= min_share * rows:
        return None
    warning = (
        f"effective sample size {ess:.1f} is below {min_share:.0%} of the {rows} rows: "
        "the target policy differs too much from the logging policy to trust these figures"
    )
    if refuse:
        raise LowEffectiveSampleSizeError(warning)
    return warning


def _target_matrix(log: DecisionLog, target_policy: ArrayLike | None) -> FloatArray | None:
    rows, n_actions = len(log.codes), len(log.actions)
    if target_policy is not None:
        pi = np.asarray(target_policy, dtype=np.float64)
        if pi.shape != (rows, n_actions):
            raise ValueError(f"target_policy: expected shape ({rows}, {n_actions})")
        return pi
    per_action = np.zeros(n_actions)
    for action in range(n_actions):
        values = log.target_probability[log.codes == action]
        if np.ptp(values) > 1e-9:
            return None
        per_action[action] = values[0]
    if per_action.sum() > 1.0 + 1e-6:
        raise ValueError("target_probability: the actions' probabilities add up to more than 1")
    return np.tile(per_action, (rows, 1))


def _reward_matrix(
    log: DecisionLog, reward_predictions: ArrayLike | None, context: ArrayLike | None
) -> FloatArray:
    rows, n_actions = len(log.codes), len(log.actions)
    if reward_predictions is not None:
        q = np.asarray(reward_predictions, dtype=np.float64)
        if q.shape != (rows, n_actions):
            raise ValueError(f"reward_predictions: expected shape ({rows}, {n_actions})")
        return q
    features = None if context is None else np.asarray(context, dtype=np.float64).reshape(rows, -1)
    return predict_rewards(log.codes, log.reward, n_actions, features)


def _bootstrap_sums(columns: FloatArray, n_bootstrap: int, seed: int) -> FloatArray:
    """Column sums over ``n_bootstrap`` resamples of the rows, drawn in memory-sized chunks."""
    rng = np.random.default_rng(seed)
    rows = len(columns)
    chunk = max(1, _BOOTSTRAP_CELLS // rows)
    sums = []
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        picks = rng.integers(0, rows, size=(size, rows))
        sums.append(columns[picks].sum(axis=1))
    return np.concatenate(sums)
