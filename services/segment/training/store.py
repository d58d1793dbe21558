"""The run's rows: reading the request, recording progress, storing what training made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from scipy.cluster.hierarchy import dendrogram, linkage  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlmodel import Session

from services.segment.features import FeatureMatrix
from services.segment.modeling.segmenter import Segmenter
from services.segment.settings import SegmentSettings

# What segments are made of, per feature set: behaviour that tells customer types apart.
# The rest of a feature set (flags, sin/cos of hours, per-channel detail) stays stored and
# shown, but adds more noise than signal to the distances; a run may name its own list.
MODEL_FEATURES: dict[str, list[str]] = {
    "v1": [
        "recency_days",
        "frequency",
        "orders_365d",
        "monetary",
        "avg_order_value",
        "avg_item_price",
        "discount_share",
        "tenure_days",
        "channel_store_share",
        "channel_app_share",
        "sessions_90d",
        "email_opens_90d",
        "email_clicks_90d",
        "searches_90d",
        "abandoned_cart_days_90d",
        "store_visits_90d",
        "support_contacts_per_30d",
        "review_sentiment_decayed",
        "transcript_sentiment_decayed",
    ],
}


@dataclass(frozen=True)
class RunRequest:
    id: int
    tenant_id: int
    algorithm: str
    feature_set: str
    seed: int
    params: dict[str, Any]

    @property
    def promote(self) -> str:
        return str(self.params.get("promote", "auto"))

    def model_params(self, settings: SegmentSettings) -> dict[str, Any]:
        k = self.params.get("k", settings.segment_k)
        return {
            "algorithm": self.algorithm,
            "k": k if k == "auto" else int(k),
            "seed": self.seed,
            "sample_size": int(self.params.get("sample_size", settings.segment_sample_size)),
            "n_threads": settings.segment_threads,
            "features": self.params.get("features") or MODEL_FEATURES.get(self.feature_set),
        }


@dataclass(frozen=True)
class PreviousRun:
    run_id: int
    members: dict[int, str]
    centroids: dict[str, list[float]] | None
    used_keys: list[str]


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def load_pending(session: Session, run_id: int) -> RunRequest | None:
    row = session.execute(
        text(
            "SELECT id, tenant_id, algorithm, feature_set, seed, params FROM segmentation_run "
            "WHERE id = :run AND status <> 'succeeded'"
        ),
        {"run": run_id},
    ).one_or_none()
    if row is None:
        return None
    return RunRequest(
        row.id, row.tenant_id, row.algorithm, row.feature_set, row.seed, dict(row.params or {})
    )


def mark_running(session: Session, run_id: int) -> None:
    session.execute(
        text(
            "UPDATE segmentation_run SET status = 'running', started_at = now(), progress = 0.05,"
            " error = NULL WHERE id = :run"
        ),
        {"run": run_id},
    )


def progress(session: Session, run_id: int, value: float, stage: str) -> None:
    session.execute(
        text(
            "UPDATE segmentation_run SET progress = :p, metrics = CASE WHEN"
            " jsonb_typeof(metrics) = 'object' THEN metrics ELSE '{}' END"
            " || jsonb_build_object('stage', CAST(:stage AS text)) WHERE id = :run"
        ),
        {"run": run_id, "p": value, "stage": stage},
    )


def mark_failed(session: Session, run_id: int, error: str) -> None:
    session.execute(
        text(
            "UPDATE segmentation_run SET status = 'failed', error = :e, finished_at = now() "
            "WHERE id = :run"
        ),
        {"run": run_id, "e": error[:2000]},
    )


def revenue_and_clv(matrix: FeatureMatrix) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each customer's revenue up to the cut-off and CLV (0 when unknown), in matrix order."""

    def column(name: str) -> NDArray[np.float64]:
        if name not in matrix.names:
            return np.zeros(len(matrix))
        return np.asarray(matrix.values[:, matrix.names.index(name)], dtype=np.float64)

    return column("monetary"), column("clv")


def previous_run(session: Session, tenant_id: int) -> PreviousRun | None:
    """The tenant's active run: its members and centroids keep segment keys stable."""
    row = session.execute(
        text("SELECT id, artifact FROM segmentation_run WHERE tenant_id = :t AND active"),
        {"t": tenant_id},
    ).one_or_none()
    used = (
        session.execute(
            text("SELECT DISTINCT key FROM segment WHERE tenant_id = :t"), {"t": tenant_id}
        )
        .scalars()
        .all()
    )
    if row is None:
        return None
    members = {
        int(pk): str(key)
        for pk, key in session.execute(
            text("SELECT customer_pk, segment_key FROM segment_membership WHERE tenant_id = :t"),
            {"t": tenant_id},
        )
    }
    model = (row.artifact or {}).get("model")
    centroids = Segmenter.from_artifact(model).centroids_by_key() if model else None
    return PreviousRun(row.id, members, centroids, [str(k) for k in used])


def _dendrogram(segmenter: Segmenter) -> dict[str, Any] | None:
    """Ward's tree over the segments' centres, ready to draw (agglomerative runs only)."""
    if segmenter.algorithm != "agglomerative" or segmenter.n_segments_ < 2:
        return None
    centres = segmenter.scaler_.transform(segmenter.centroids_)
    keys = [segmenter.segment_keys_[label] for label in range(segmenter.n_segments_)]
    tree = dendrogram(linkage(centres, method="ward"), labels=keys, no_plot=True)
    return {"icoord": tree["icoord"], "dcoord": tree["dcoord"], "labels": tree["ivl"]}


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


def _segment_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    segmenter: Segmenter = result["segmenter"]
    jaccard = result["keys"].jaccard
    rows = []
    for segment in result["explanation"]["segments"]:
        label = segment["label"]
        key = segmenter.segment_keys_.get(label, "noise") if label >= 0 else "noise"
        features = [
            {"name": name, **values} for name, values in segment["profile"]["features"].items()
        ]
        paths = segment["rules"].get("paths", [])
        rules = {
            "text": " or ".join(p["text"] for p in paths[:2]) or None,
            "fidelity": segment["rules"].get("recall"),
            "precision": segment["rules"].get("precision"),
            "paths": paths,
        }
        stats = {**segment["stats"], "jaccard_previous": jaccard.get(key)}
        profile = {
            "share": segment["stats"]["share"],
            "features": features,
            "standouts": segment["profile"]["standouts"],
        }
        rows.append(
            {
                "key": key,
                "name": segment["name"],
                "description": segment["description"],
                "size": segment["size"],
                "profile": _json(profile),
                "rules": _json(rules),
                "stats": _json(stats),
            }
        )
    return rows


def save_result(session: Session, run: RunRequest, result: dict[str, Any]) -> None:
    segmenter: Segmenter = result["segmenter"]
    metrics = dict(segmenter.metrics_)
    selection = metrics.get("k_selection") or {}
    metrics.update(
        k_curve=selection.get("curve", []),
        surrogate_fidelity=result["explanation"]["surrogate"]["fidelity"],
        ari_previous=result["keys"].adjusted_rand_index,
        previous_run_id=result["previous_run_id"],
        stage="trained",
    )
    artifact = {
        "feature_names": list(segmenter.feature_names_),
        "model": segmenter.to_artifact(),
        "projection": _map(segmenter, result["projection"]),
        "dendrogram": _dendrogram(segmenter),
        "surrogate": {
            k: v for k, v in result["explanation"]["surrogate"].items() if k != "segments"
        },
        "clv": result["clv"],
    }
    session.execute(text("DELETE FROM segment WHERE run_id = :run"), {"run": run.id})
    for row in _segment_rows(result):
        session.execute(
            text(
                "INSERT INTO segment (tenant_id, run_id, key, name, description, size, profile,"
                " rules, stats) VALUES (:tenant, :run, :key, :name, :description, :size,"
                " CAST(:profile AS jsonb), CAST(:rules AS jsonb), CAST(:stats AS jsonb))"
            ),
            {"tenant": run.tenant_id, "run": run.id, **row},
        )
    matrix = result["matrix"]
    window = {
        "as_of": result["as_of"].isoformat(),
        "customers": len(matrix),
        "features_as_of": matrix.as_of.isoformat() if matrix.as_of else None,
    }
    session.execute(
        text(
            "UPDATE segmentation_run SET status = 'succeeded', progress = 0.9, finished_at = now(),"
            " metrics = CAST(:metrics AS jsonb), artifact = CAST(:artifact AS jsonb),"
            " data_window = CAST(:window AS jsonb), library_versions = CAST(:versions AS jsonb)"
            " WHERE id = :run"
        ),
        {
            "run": run.id,
            "metrics": _json(metrics),
            "artifact": _json(artifact),
            "window": _json(window),
            "versions": _json(segmenter.library_versions_),
        },
    )
