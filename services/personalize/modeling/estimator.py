"""scikit-learn's estimator contract without importing scikit-learn.

The storefront's API decides with these models on every request; importing scikit-learn
there costs seconds of start-up and tens of MB per process for two helpers. The contract
stays the same: ``__init__`` stores parameters only, learned attributes end in ``_``, and
using an unfitted model raises `NotFittedError` (a ValueError and AttributeError, as
scikit-learn's is).
"""

from __future__ import annotations

import inspect
from typing import Any, Self


class NotFittedError(ValueError, AttributeError):
    pass


class Estimator:
    """``get_params`` read from ``__init__``'s signature, as ``BaseEstimator`` does."""

    def get_params(self) -> dict[str, Any]:
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind is not p.VAR_KEYWORD
        ]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> Self:
        """Set parameters by name (unknown names raise ValueError), as scikit-learn does."""
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def check_is_fitted(estimator: object, attribute: str) -> None:
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet: call fit() before using it"
        )
