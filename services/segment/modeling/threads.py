"""Thread limits for numpy's BLAS and scikit-learn's OpenMP pools.

On a few busy cores these pools oversubscribe: mini-batch k-means ran 40x slower with two
threads than with one while the other core was busy. Every fit and prediction here runs
inside `limit_threads`. One controller per process: building one scans the loaded
libraries (~10 ms), too slow for a single-customer prediction; the scikit-learn and numpy
imports above have loaded every pool it must find.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy  # noqa: F401 - its BLAS must be loaded before the controller scans
import sklearn.cluster  # type: ignore[import-untyped]  # noqa: F401 - loads OpenMP
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]


@cache
def _controller() -> Any:
    return ThreadpoolController()


def limit_threads(n_threads: int) -> Any:
    """A context manager that caps every known thread pool at ``n_threads``."""
    return _controller().limit(limits=n_threads)
