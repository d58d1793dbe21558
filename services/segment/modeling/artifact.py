"""The JSON artifact of a fitted `Segmenter`: plain lists, numbers and strings.

Format (``format_version`` 1)::

    format, format_version   "segmenta.segmentation", 1
    algorithm, params, seed  the estimator's parameters (k_range as a list)
    data_window              what the caller recorded about the data, or null
    input_features           the columns ``predict`` expects, in order
    feature_names            the ones segmented on (all, unless ``params.features``)
    preprocessing            FeatureScaler: log_features, mean, scale (after log1p)
    pca                      null, or mean, components, explained_variance_ratio
    assigner                 kind "centroids" (centroids), "gaussian_mixture" (weights,
                             means, precisions_cholesky) or "exemplars" (points, labels,
                             radii, noise_to_nearest), all in the scaled (PCA) space
    n_segments, centroids    per segment its mean in original units, label order
    segment_keys             {"0": "seg-3", ...} once keys are assigned, else null
    metrics, library_versions

Floats go through JSON exactly (Python writes the shortest repr that reads back to the
same double), so a loaded model predicts bit-for-bit as the fitted one.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import numpy as np

from services.segment.modeling.assign import LinearMap, assigner_from_dict
from services.segment.modeling.preprocessing import FeatureScaler, column_indices

if TYPE_CHECKING:
    from services.segment.modeling.segmenter import Segmenter

FORMAT = "segmenta.segmentation"
FORMAT_VERSION = 1
_LIBRARIES = ("numpy", "scipy", "scikit-learn", "threadpoolctl")


def dump(segmenter: Segmenter, data_window: Mapping[str, Any] | None) -> dict[str, Any]:
    keys = getattr(segmenter, "segment_keys_", None)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "algorithm": segmenter.algorithm,
        "params": params_to_json(segmenter.get_params()),
        "seed": segmenter.seed,
        "data_window": None if data_window is None else dict(data_window),
        "input_features": list(segmenter.input_features_),
        "feature_names": list(segmenter.feature_names_),
        "preprocessing": segmenter.scaler_.to_dict(),
        "pca": None if segmenter.pca_ is None else segmenter.pca_.to_dict(),
        "assigner": segmenter.assigner_.to_dict(),
        "n_segments": segmenter.n_segments_,
        "centroids": segmenter.centroids_.tolist(),
        "segment_keys": None if keys is None else {str(k): v for k, v in keys.items()},
        "metrics": segmenter.metrics_,
        "library_versions": segmenter.library_versions_,
    }


def restore(segmenter: Segmenter, artifact: Mapping[str, Any]) -> None:
    """Set the learned attributes of a fresh ``segmenter`` from ``artifact``."""
    segmenter.scaler_ = FeatureScaler.from_dict(artifact["preprocessing"])
    segmenter.input_features_ = list(artifact["input_features"])
    segmenter.feature_names_ = list(artifact["feature_names"])
    segmenter.columns_ = column_indices(segmenter.input_features_, segmenter.feature_names_)
    segmenter.n_features_in_ = len(segmenter.input_features_)
    pca = artifact["pca"]
    segmenter.pca_ = None if pca is None else LinearMap.from_dict(pca)
    segmenter.assigner_ = assigner_from_dict(artifact["assigner"])
    segmenter.n_segments_ = int(artifact["n_segments"])
    segmenter.centroids_ = np.asarray(artifact["centroids"], dtype=np.float64)
    segmenter.metrics_ = artifact["metrics"]
    segmenter.library_versions_ = artifact["library_versions"]
    if artifact.get("segment_keys") is not None:
        keys = artifact["segment_keys"].items()
        segmenter.segment_keys_ = {int(label): str(key) for label, key in keys}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - every one is a dependency
            versions[name] = "unknown"
    return versions


def check_format(artifact: Mapping[str, Any]) -> None:
    if artifact.get("format") != FORMAT:
        raise ValueError(f"not a segmentation artifact (format {artifact.get('format')!r})")
    if artifact.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"segmentation artifact version {artifact.get('format_version')!r} is not "
            f"supported (this code reads version {FORMAT_VERSION})"
        )


def params_to_json(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _plain(value) for name, value in params.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def params_from_json(params: Mapping[str, Any]) -> dict[str, Any]:
    decoded = dict(params)
    if isinstance(decoded.get("k_range"), list):
        decoded["k_range"] = tuple(decoded["k_range"])
    return decoded
