"""Feature scaling for segmentation: log1p for skewed counts and amounts, then z-scores.

Customer features such as frequency and monetary value are heavy-tailed: left as they are,
a few big spenders dominate every Euclidean distance and k-means spends its clusters on
them. ``log1p`` compresses the tail; standardising then gives every feature the same
weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin  # type: ignore[import-untyped]
from sklearn.utils.validation import (  # type: ignore[import-untyped]
    check_is_fitted,
    validate_data,
)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
# The share of rows at either end of a column clipped before its skewness is measured.
TAIL = 0.01


class FeatureScaler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """``log1p`` on the chosen columns, then standardise every column.

    ``log_features``: ``"auto"`` logs every non-negative column whose sample skewness
    exceeds ``skew_threshold``; a list of column indices (or of names, with
    ``feature_names`` given to ``fit``) logs exactly those, which must be non-negative;
    ``None`` logs nothing. At transform time negative values in a logged column (a refund
    that made a spend negative) are clipped to 0 first, so the log stays defined.
    Constant columns get scale 1 and come out as 0.

    The skewness that decides ``"auto"`` is measured with each column's ``TAIL`` share of
    rows at either end clipped to the quantile there, so a handful of extreme customers (a
    spend spike, a bot's page views) does not change which columns are logged, and with
    it every customer's distances.
    """

    def __init__(
        self, log_features: str | Sequence[int | str] | None = "auto", skew_threshold: float = 1.0
    ) -> None:
        self.log_features = log_features
        self.skew_threshold = skew_threshold

    def fit(
        self,
        X: ArrayLike,  # noqa: N803
        y: object = None,
        feature_names: Sequence[str] | None = None,
    ) -> Self:
        data = np.asarray(validate_data(self, X, dtype=np.float64), dtype=np.float64)
        if feature_names is None and hasattr(self, "feature_names_in_"):
            feature_names = list(self.feature_names_in_)
        self.feature_names_ = check_feature_names(feature_names, data.shape[1])
        self.log_mask_ = self._log_mask(data)
        logged = _log(data, self.log_mask_)
        self.mean_ = logged.mean(axis=0)
        std = logged.std(axis=0)
        self.scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(self.mean_)), std, 1.0)
        return self

    def transform(self, X: ArrayLike) -> FloatArray:  # noqa: N803
        check_is_fitted(self)
        data = np.asarray(validate_data(self, X, dtype=np.float64, reset=False), dtype=np.float64)
        scaled = (_log(data, self.log_mask_) - self.mean_) / self.scale_
        return np.asarray(scaled, dtype=np.float64)

    def inverse_transform(self, X: ArrayLike) -> FloatArray:  # noqa: N803
        check_is_fitted(self)
        data = np.asarray(validate_data(self, X, dtype=np.float64, reset=False), dtype=np.float64)
        unscaled = np.asarray(data * self.scale_ + self.mean_, dtype=np.float64)
        unscaled[:, self.log_mask_] = np.expm1(unscaled[:, self.log_mask_])
        return unscaled

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> NDArray[Any]:
        check_is_fitted(self)
        return np.asarray(self.feature_names_, dtype=object)

    @property
    def log_feature_names_(self) -> list[str]:
        return [
            name for name, logged in zip(self.feature_names_, self.log_mask_, strict=True) if logged
        ]

    def to_dict(self) -> dict[str, Any]:
        """The learned parameters as plain lists; `from_dict` restores an equal scaler."""
        check_is_fitted(self)
        return {
            "feature_names": list(self.feature_names_),
            "log_features": self.log_feature_names_,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "skew_threshold": self.skew_threshold,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaler:
        names = [str(name) for name in data["feature_names"]]
        scaler = cls(log_features=list(data["log_features"]), skew_threshold=data["skew_threshold"])
        scaler.feature_names_ = names
        scaler.log_mask_ = np.isin(np.asarray(names), list(data["log_features"]))
        scaler.mean_ = np.asarray(data["mean"], dtype=np.float64)
        scaler.scale_ = np.asarray(data["scale"], dtype=np.float64)
        scaler.n_features_in_ = len(names)
        return scaler

    def _log_mask(self, data: FloatArray) -> BoolArray:
        n_features = data.shape[1]
        if self.log_features is None:
            return np.zeros(n_features, dtype=bool)
        if isinstance(self.log_features, str):
            if self.log_features != "auto":
                raise ValueError(
                    f"log_features must be 'auto', a list or None, not {self.log_features!r}"
                )
            trimmed = _winsorize(data, TAIL)
            skewed = (data.min(axis=0) >= 0) & (_skewness(trimmed) > self.skew_threshold)
            return np.asarray(skewed, dtype=bool)
        mask = np.zeros(n_features, dtype=bool)
        for feature in self.log_features:
            mask[_column_index(feature, self.feature_names_)] = True
        if np.any(data[:, mask] < 0):
            raise ValueError("log_features must be non-negative: log1p is undefined below -1")
        return mask


def _log(data: FloatArray, mask: BoolArray) -> FloatArray:
    out = data.copy()
    out[:, mask] = np.log1p(np.maximum(data[:, mask], 0.0))
    return out


def _winsorize(data: FloatArray, tail: float) -> FloatArray:
    """Each column clipped to its ``tail`` and ``1 - tail`` quantiles."""
    if len(data) == 0:
        return data
    low, high = np.quantile(data, [tail, 1.0 - tail], axis=0)
    return np.clip(data, low, high)


def _skewness(data: FloatArray) -> FloatArray:
    centred = data - data.mean(axis=0)
    variance = (centred**2).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = (centred**3).mean(axis=0) / variance**1.5
    return np.where(variance > 0, skew, 0.0)


def check_feature_names(names: Sequence[str] | None, n_features: int) -> list[str]:
    if names is None:
        return [f"x{i}" for i in range(n_features)]
    if len(names) != n_features:
        raise ValueError(f"{len(names)} feature names for {n_features} columns")
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    return [str(name) for name in names]


def _column_index(feature: int | str, names: list[str]) -> int:
    if isinstance(feature, str):
        if feature not in names:
            raise ValueError(f"unknown feature {feature!r}; features are {names}")
        return names.index(feature)
    if not 0 <= feature < len(names):
        raise ValueError(f"feature index {feature} out of range for {len(names)} features")
    return int(feature)


def column_indices(names: list[str], chosen: Sequence[str]) -> NDArray[np.int64]:
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise ValueError(f"unknown features {unknown}; the columns are {names}")
    return np.asarray([names.index(name) for name in chosen], dtype=np.int64)
