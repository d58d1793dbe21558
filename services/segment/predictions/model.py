"""The propensity model: gradient-boosted trees, calibrated only when that helps.

`PropensityModel` follows scikit-learn's contract (numpy in, no database). ``fit`` cuts
the labelled customers into three parts: with stacked cut-offs (``groups``) a share of
the latest cut-off's customers, closest in time to the scored window, is held out and
halved into a calibration and a validation part, and the trees learn on the other
customers at every cut-off; otherwise three stratified parts of 60 / 20 / 20 %.
Isotonic and sigmoid (Platt) calibrators learn on the calibration part and the
validation part decides: the calibration with the lowest Brier score there is kept,
"none" included, and every figure the run records (the model's and the baselines') is
measured on that part.

The guard: when the trees rank the validation part worse (AUC) than the best baseline
score passed to ``fit``, the model serves that baseline instead, calibrated the same way
on the same parts, and records which it serves and why (``served``, ``served_because``).

Why scikit-learn's HistGradientBoostingClassifier and not LightGBM: the same histogram
algorithm, no new dependency, and on tens of features and up to a few million rows it
trains in seconds to a minute on one thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator  # type: ignore[import-untyped]
from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
from sklearn.isotonic import IsotonicRegression  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
from sklearn.utils.validation import check_is_fitted  # type: ignore[import-untyped]

from services.segment.predictions import metrics

FloatArray = NDArray[np.float64]
CALIBRATIONS = ("none", "isotonic", "sigmoid")
PROBABILITY_FLOOR = 0.001
MIN_CLASS = 10  # fewer examples of either outcome leave nothing to learn or to measure


class NotEnoughLabels(ValueError):  # noqa: N818 (a reason a run fails, read by people)
    pass


@dataclass(frozen=True)
class Validation:
    """Everything measured on the validation part."""

    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    reliability: dict[str, list[dict[str, float]]]
    lift: list[dict[str, Any]]
    sizes: dict[str, int] = field(default_factory=dict)


class _Sigmoid:
    """Platt scaling on the log-odds of the trees' probability."""

    def __init__(self) -> None:
        self.model = LogisticRegression(C=1e6)

    def fit(self, p: FloatArray, y: NDArray[np.int64]) -> _Sigmoid:
        self.model.fit(_logit(p)[:, None], y)
        return self

    def predict(self, p: FloatArray) -> FloatArray:
        return np.asarray(self.model.predict_proba(_logit(p)[:, None])[:, 1], dtype=np.float64)


class _ScoreSigmoid:
    """Platt scaling of any score (a baseline's), standardised first."""

    def __init__(self) -> None:
        self.model = LogisticRegression(C=1e6)
        self.centre, self.scale = 0.0, 1.0

    def fit(self, score: FloatArray, y: NDArray[np.int64]) -> _ScoreSigmoid:
        self.centre = float(np.mean(score))
        self.scale = float(np.std(score)) or 1.0
        self.model.fit(((score - self.centre) / self.scale)[:, None], y)
        return self

    def predict(self, score: FloatArray) -> FloatArray:
        z = (np.asarray(score, dtype=np.float64) - self.centre) / self.scale
        return np.asarray(self.model.predict_proba(z[:, None])[:, 1], dtype=np.float64)


Sigmoid = type[_Sigmoid | _ScoreSigmoid]


def _fit_calibrators(score: FloatArray, y: NDArray[np.int64], sigmoid: Sigmoid) -> dict[str, Any]:
    return {
        "isotonic": IsotonicRegression(out_of_bounds="clip").fit(score, y),
        "sigmoid": sigmoid().fit(score, y),
    }


@dataclass(frozen=True)
class _HeldOut:
    """The two held-out parts' scores and outcomes, for choosing and fitting calibrators.

    A calibration is chosen by its Brier score out of sample on both parts in turn (fitted
    on one, scored on the other: twice the rows of one part, so a choice less at the mercy
    of a few hundred customers), then fitted on both parts together to serve."""

    calib: FloatArray
    y_calib: NDArray[np.int64]
    valid: FloatArray
    y_valid: NDArray[np.int64]

    def on_calibration(self, sigmoid: Sigmoid) -> dict[str, Any]:
        return _fit_calibrators(self.calib, self.y_calib, sigmoid)

    def on_both(self, sigmoid: Sigmoid) -> dict[str, Any]:
        both = np.concatenate([self.calib, self.valid])
        return _fit_calibrators(both, np.concatenate([self.y_calib, self.y_valid]), sigmoid)

    def crossed_brier(
        self, on_calibration: dict[str, Any], sigmoid: Sigmoid, *, with_none: bool
    ) -> dict[str, float]:
        """Each calibration's Brier score on both parts, each scored by the calibrator
        of the other (``on_calibration``: those fitted on the calibration part)."""
        y = np.concatenate([self.y_valid, self.y_calib])
        on_validation = _fit_calibrators(self.valid, self.y_valid, sigmoid)
        out: dict[str, float] = {}
        for name, calibrator in on_calibration.items():
            p = np.concatenate(
                [calibrator.predict(self.valid), on_validation[name].predict(self.calib)]
            )
            out[name] = _brier(y, p)
        if with_none:
            out["none"] = _brier(y, np.concatenate([self.valid, self.calib]))
        return out


def _brier(y: NDArray[np.int64], p: FloatArray) -> float:
    clipped = np.clip(np.asarray(p, dtype=np.float64), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return float(np.mean((clipped - y) ** 2))


def _split(
    y: NDArray[np.int64],
    groups: NDArray[np.int64] | None,
    customers: NDArray[np.int64] | None,
    seed: int,
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp], str]:
    """Rows for the trees, the calibrators and validation, and how they were cut.

    "time": with stacked cut-offs (``groups``, 0 the latest), 40 % of the latest cut-off's
    customers (stratified) are held out and their rows there, closest in time to the
    scored window, halved into calibration and validation; the trees learn on every row,
    at every cut-off, of the other customers (``customers``: whose row it is; without it
    every row is its own). "random": otherwise (one cut-off, or too few of an outcome in
    a part), stratified 60 / 20 / 20 over every row."""
    rows = np.arange(len(y))
    if groups is not None:
        latest = rows[np.asarray(groups) == 0]
        owner = rows if customers is None else np.asarray(customers)
        if _enough(y[latest], 2) and len(latest) < len(rows):
            _, held = train_test_split(latest, test_size=0.4, stratify=y[latest], random_state=seed)
            train = rows[~np.isin(owner, owner[held])]
            if _enough(y[train], 1):
                calib, valid = train_test_split(
                    held, test_size=0.5, stratify=y[held], random_state=seed
                )
                return train, calib, valid, "time"
    train, rest = train_test_split(rows, test_size=0.4, stratify=y, random_state=seed)
    calib, valid = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=seed)
    return train, calib, valid, "random"


def _enough(y: NDArray[np.int64], parts: int) -> bool:
    positives = int(y.sum())
    return min(positives, len(y) - positives) >= parts * MIN_CLASS


def _logit(p: FloatArray) -> FloatArray:
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=np.float64)


class PropensityModel(BaseEstimator):  # type: ignore[misc]
    """P(event) per customer from a feature vector; see the module's docstring.

    ``baselines`` passed to ``fit`` are other scores of the same customers (higher: more
    likely the event) measured beside the model on the validation part."""

    def __init__(
        self,
        *,
        seed: int = 7,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 31,
        l2_regularization: float = 1.0,
    ) -> None:
        self.seed = seed
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization

    def fit(
        self,
        X: FloatArray,  # noqa: N803
        y: NDArray[np.int64],
        *,
        baselines: dict[str, FloatArray] | None = None,
        groups: NDArray[np.int64] | None = None,
        customers: NDArray[np.int64] | None = None,
    ) -> Self:
        y = np.asarray(y, dtype=np.int64)
        positives = int(y.sum())
        if min(positives, len(y) - positives) < MIN_CLASS:
            raise NotEnoughLabels(
                f"{positives} of {len(y)} labelled customers had the event: at least "
                f"{MIN_CLASS} of each outcome are needed"
            )
        train, calib, valid, self.split_ = _split(y, groups, customers, self.seed)
        started = time.perf_counter()
        self.trees_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            early_stopping=True,
            random_state=self.seed,
        ).fit(X[train], y[train])
        self.fit_seconds_ = time.perf_counter() - started
        raw_calib, raw_valid = self._raw(X[calib]), self._raw(X[valid])
        held_out = _HeldOut(raw_calib, y[calib], raw_valid, y[valid])
        self.calibrators_: dict[str, Any] = held_out.on_calibration(_Sigmoid)
        candidates = {name: self._calibrated(name, raw_valid) for name in CALIBRATIONS}
        scored = {name: metrics.calibration(y[valid], p) for name, p in candidates.items()}
        crossed = held_out.crossed_brier(self.calibrators_, _Sigmoid, with_none=True)
        self.calibration_ = min(CALIBRATIONS, key=lambda name: crossed[name])
        boosted_auc = metrics.ranking(y[valid], raw_valid)["auc"]
        measured = {
            name: metrics.ranking(y[valid], np.asarray(score)[valid])
            for name, score in (baselines or {}).items()
        }
        self.served_, because = "model", "no baseline to compare with"
        self.baseline_calibrators_: dict[str, Any] = {}
        if measured:
            best = max(measured, key=lambda name: measured[name]["auc"])
            best_auc = measured[best]["auc"]
            if boosted_auc < best_auc:
                self.served_ = best
                because = (
                    f"the boosted model's validation AUC {boosted_auc} is below {best}'s "
                    f"{best_auc}: the calibrated baseline is served"
                )
            else:
                because = (
                    f"the boosted model's validation AUC {boosted_auc} is not below the best "
                    f"baseline's ({best}, {best_auc})"
                )
        if self.served_ != "model":
            score = np.asarray((baselines or {})[self.served_], dtype=np.float64)
            held_out = _HeldOut(score[calib], y[calib], score[valid], y[valid])
            self.baseline_calibrators_ = held_out.on_calibration(_ScoreSigmoid)
            raw_valid = score[valid]
            candidates = {
                name: self._baseline_calibrated(name, raw_valid)
                for name in self.baseline_calibrators_
            }
            scored = {name: metrics.calibration(y[valid], p) for name, p in candidates.items()}
            crossed = held_out.crossed_brier(
                self.baseline_calibrators_, _ScoreSigmoid, with_none=False
            )
            self.calibration_ = min(candidates, key=lambda name: crossed[name])
        # The figures below are out of sample (calibrators of the calibration part, on the
        # validation part); what serves is then refitted on both parts: twice the rows.
        chosen = candidates[self.calibration_]
        if self.served_ == "model":
            self.calibrators_ = held_out.on_both(_Sigmoid)
        else:
            self.baseline_calibrators_ = held_out.on_both(_ScoreSigmoid)
        self.validation_ = Validation(
            metrics={
                **metrics.ranking(y[valid], chosen),
                **scored[self.calibration_],
                "calibration": self.calibration_,
                "calibration_candidates": scored,
                "calibration_brier_crossed": {k: round(v, 4) for k, v in crossed.items()},
                "base_rate": round(float(y[valid].mean()), 4),
                "iterations": int(self.trees_.n_iter_),
                "served": self.served_,
                "served_because": because,
                "boosted_auc": boosted_auc,
                "split": self.split_,
            },
            baselines=measured,
            reliability={
                "uncalibrated": metrics.reliability_curve(y[valid], self._raw(X[valid])),
                "calibrated": metrics.reliability_curve(y[valid], chosen),
            },
            lift=metrics.lift(y[valid], chosen),
            sizes={"train": len(train), "calibration": len(calib), "validation": len(valid)},
        )
        return self

    def predict_proba(
        self,
        X: FloatArray,  # noqa: N803
        baselines: dict[str, FloatArray] | None = None,
    ) -> FloatArray:
        """P(event) per row, after the chosen calibration: of the trees, or of the served
        baseline's score (then ``baselines`` must hold it, for the same rows)."""
        check_is_fitted(self, "calibration_")
        if self.served_ == "model":
            return self._calibrated(self.calibration_, self._raw(X))
        if baselines is None or self.served_ not in baselines:
            raise ValueError(f"the run serves the baseline {self.served_}: pass its scores")
        return self.predict_baseline(np.asarray(baselines[self.served_], dtype=np.float64))

    def predict_baseline(self, score: FloatArray) -> FloatArray:
        """The served baseline's score as a calibrated probability."""
        check_is_fitted(self, "baseline_calibrators_")
        return self._baseline_calibrated(self.calibration_, score)

    def _baseline_calibrated(self, name: str, score: FloatArray) -> FloatArray:
        p = np.asarray(self.baseline_calibrators_[name].predict(score), dtype=np.float64)
        return np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)

    def predict_raw(self, X: FloatArray) -> FloatArray:  # noqa: N803
        """The trees' own probability, before calibration (smooth in every feature,
        where an isotonic calibration is a staircase)."""
        check_is_fitted(self, "trees_")
        return self._raw(X)

    def _raw(self, X: FloatArray) -> FloatArray:  # noqa: N803
        return np.asarray(self.trees_.predict_proba(X)[:, 1], dtype=np.float64)

    def _calibrated(self, name: str, raw: FloatArray) -> FloatArray:
        p = raw if name == "none" else np.asarray(self.calibrators_[name].predict(raw))
        # Certainty is never warranted: a staircase calibration reaches 0 and 1 exactly.
        return np.clip(p.astype(np.float64), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)


@dataclass(frozen=True)
class Reasons:
    """Per customer, the ``top`` features that move the probability most, strongest first:
    their index in the feature names (-1 where fewer move it at all), value and push (how
    much higher the probability is for this value than with the population's median in
    that one place; negative for a feature that lowers it)."""

    features: NDArray[np.int64]
    values: FloatArray
    pushes: FloatArray
    seconds: float

    def of(self, row: int, names: list[str]) -> list[dict[str, Any]]:
        return [
            {"feature": names[j], "value": float(v), "push": float(p)}
            for j, v, p in zip(self.features[row], self.values[row], self.pushes[row], strict=True)
            if j >= 0
        ]


def top_reasons(
    model: PropensityModel,
    X: FloatArray,  # noqa: N803
    *,
    reference: FloatArray,
    top: int = 3,
) -> Reasons:
    """Each row's `Reasons`, by occlusion: a feature's push is the drop in the trees'
    probability for the row (before calibration, which is monotone and would flatten the
    differences into its steps) when that one value is replaced by ``reference`` (the
    population's median). One pass over the rows per feature: (features + 1) predictions
    per customer, a cost measured and recorded with each run."""
    started = time.perf_counter()
    base = model.predict_raw(X)
    push = np.empty_like(X)
    for j in range(X.shape[1]):
        column = X[:, j].copy()
        X[:, j] = reference[j]
        push[:, j] = base - model.predict_raw(X)
        X[:, j] = column
    best = np.argsort(-np.abs(push), axis=1, kind="stable")[:, :top]
    pushes = np.take_along_axis(push, best, axis=1)
    features = np.where(pushes != 0, best, -1).astype(np.int64)
    values = np.take_along_axis(X, best, axis=1)
    return Reasons(features, values, np.round(pushes, 4), time.perf_counter() - started)
