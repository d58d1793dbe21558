"""What a fitted segmentation becomes: its segments, its artifact and its metadata.

The modelling library answers in JSON-able reports (`Segmenter.explain`, `project`);
here they become the typed `SegmentationResult` that the run's owner stores. A segment's
rules, profile and stats are read by assignment, the API and the dashboard, so they are
built as their contracts (`shared.contracts.rules`), which stamp each with its version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from services.segment.features import FeatureMatrix
from services.segment.modeling.explain import ward_dendrogram
from services.segment.modeling.identity import KeyAssignment
from services.segment.modeling.segmenter import Segmenter
from services.segment.scoring.clv_scores import ClvOutcome, clv_for_segments
from services.segment.segmentations.runs import (
    SEGMENTATION,
    SegmentationParams,
    SegmentationResult,
    SegmentRecord,
)
from shared.contracts.rules import SegmentProfile, SegmentRules, SegmentStats
from shared.runs import ArtifactMetadata, DataWindow


@dataclass(frozen=True)
class FittedSegmentation:
    """A fitted model with its stable segment keys, and the run it was keyed against."""

    segmenter: Segmenter
    keys: KeyAssignment
    previous_run_id: int | None


def revenue_and_clv(matrix: FeatureMatrix) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each customer's revenue up to the cut-off and CLV (0 when unknown), in matrix order."""

    def column(name: str) -> NDArray[np.float64]:
        if name not in matrix.names:
            return np.zeros(len(matrix))
        return np.asarray(matrix.values[:, matrix.names.index(name)], dtype=np.float64)

    return column("monetary"), column("clv")


def build_result(
    fitted: FittedSegmentation,
    *,
    matrix: FeatureMatrix,
    clv: ClvOutcome,
    params: SegmentationParams,
    as_of: datetime,
    fingerprint: str | None = None,
) -> SegmentationResult:
    """Explain and project the fitted model over ``matrix``, the run's training rows;
    ``fingerprint``: the hash of the records and parameters it was trained from."""
    segmenter = fitted.segmenter
    revenue, _ = revenue_and_clv(matrix)
    value = clv_for_segments(matrix, clv)  # NaN where withheld: left out of segment means
    report = segmenter.explain(matrix.values, revenue=revenue, clv=value)
    surrogate = dict(report["surrogate"])
    selection = segmenter.metrics_.get("k_selection") or {}
    metrics = {
        **segmenter.metrics_,
        "k_curve": selection.get("curve", []),
        "surrogate_fidelity": surrogate["fidelity"],
        "ari_previous": fitted.keys.adjusted_rand_index,
        "previous_run_id": fitted.previous_run_id,
        "stage": "trained",
        "data_fingerprint": fingerprint,
    }
    artifact = {
        "feature_names": list(segmenter.feature_names_),
        "model": segmenter.to_artifact(),
        "projection": _map(segmenter, segmenter.project(matrix.values)),
        "dendrogram": _dendrogram(segmenter),
        "surrogate": surrogate,
        "clv": clv.params,
    }
    window = DataWindow(as_of=as_of, customers=len(matrix), features_as_of=matrix.as_of)
    metadata = ArtifactMetadata(
        kind=SEGMENTATION.name,
        data_window=window,
        feature_set=params.feature_set,
        features=list(segmenter.feature_names_),
        parameters=params.stored(),
        metrics=_plain(metrics),
        library_versions=segmenter.library_versions_,
        seed=params.seed,
    )
    segments = [_record(segmenter, fitted.keys, segment) for segment in report["segments"]]
    return SegmentationResult(segments=segments, artifact=artifact, metadata=metadata)


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    """Numpy scalars as Python ones (the metadata holds JSON values only)."""
    return dict(orjson.loads(orjson.dumps(metrics, option=orjson.OPT_SERIALIZE_NUMPY)))


def _dendrogram(segmenter: Segmenter) -> dict[str, Any] | None:
    if segmenter.algorithm != "agglomerative":
        return None  # the tree means something only for Ward's merges
    centres = segmenter.scaler_.transform(segmenter.centroids_)
    keys = [segmenter.segment_keys_[label] for label in range(segmenter.n_segments_)]
    return ward_dendrogram(centres, keys)


def _map(segmenter: Segmenter, projection: dict[str, Any]) -> dict[str, Any]:
    """The 2-D map with segment keys for labels: t-SNE where it ran, else PCA."""
    keys = segmenter.segment_keys_

    def keyed(points: list[list[float]]) -> list[list[Any]]:
        return [[x, y, keys.get(int(label), "noise")] for x, y, label in points]

    chosen = "tsne" if projection.get("tsne") else "pca"
    return {
        "method": chosen,
        "points": keyed(projection[chosen]["points"]),
        "pca_points": keyed(projection["pca"]["points"]),
        "explained_variance_ratio": projection["pca"]["explained_variance_ratio"],
        "n_customers": projection["n_customers"],
    }


def _record(segmenter: Segmenter, keys: KeyAssignment, segment: dict[str, Any]) -> SegmentRecord:
    """One segment of `Segmenter.explain`'s report, as the ``segment`` table keeps it."""
    label = segment["label"]
    key = segmenter.segment_keys_.get(label, "noise") if label >= 0 else "noise"
    report = _plain(segment)  # numpy scalars as Python ones, before validation
    found = report["rules"]
    paths = found.get("paths", [])
    rules = SegmentRules(
        # The rule as explain() wrote it (labels, brackets); older reports had no text.
        text=found.get("text") or " or ".join(p["text"] for p in paths[:2]) or None,
        fidelity=found.get("recall"),
        precision=found.get("precision"),
        coverage=found.get("coverage"),
        low_coverage=found.get("low_coverage"),
        source=found.get("source"),
        paths=paths,
    )
    profile = SegmentProfile(
        share=report["stats"]["share"],
        features=[
            {"name": name, **values} for name, values in report["profile"]["features"].items()
        ],
        standouts=report["profile"]["standouts"],
    )
    stats = SegmentStats.model_validate(
        {**report["stats"], "jaccard_previous": keys.jaccard.get(key)}
    )
    return SegmentRecord(
        key=key,
        name=report["name"],
        description=report["description"],
        size=int(report["size"]),
        profile=profile,
        rules=rules,
        stats=stats,
    )
