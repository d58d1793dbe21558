"""Assembling the dashboard's data from the active run and what the training task stored.

Run and segment JSON is written by the training task; every reader here tolerates missing
or differently shaped keys and leaves that picture out rather than failing the page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from services.segment.dashboard import repository as repo
from services.segment.dashboard.colors import segment_colors
from services.segment.dashboard.schemas import (
    ActiveRun,
    ClvHistogram,
    DashboardData,
    DashboardSegment,
    Dendrogram,
    KPoint,
    Profiles,
    Projection,
    RecentRun,
    RunMetrics,
    RunSizes,
    number,
)
from services.segment.modeling.labels import label
from services.segment.segmentations.repository import active_run
from services.segment.segments.repository import segments_of_run, shop_currency
from services.segment.segments.schemas import SegmentPublic, segment_public

NO_ACTIVE_RUN = "no active segmentation yet: POST /v1/segmentations to train one"
MAX_POINTS = 5_000
MAX_PROFILE_FEATURES = 12


def dashboard_data(
    session: Session, *, tenant_id: int, default_currency: str = "EUR"
) -> DashboardData:
    run = active_run(session, tenant_id=tenant_id)
    common: dict[str, Any] = {
        "generated_at": datetime.now(UTC),
        "history": [_run_sizes(row) for row in repo.run_history(session, tenant_id=tenant_id)],
        "recent_runs": [
            RecentRun.model_validate(row) for row in repo.recent_runs(session, tenant_id=tenant_id)
        ],
        "clv": _clv(repo.clv_histogram(session, tenant_id=tenant_id)),
        "currency": shop_currency(session, tenant_id=tenant_id) or default_currency,
    }
    history_keys = [key for sizes in common["history"] for key in sizes.sizes]
    common["colors"] = segment_colors(history_keys)
    if run is None:
        return DashboardData(
            message=NO_ACTIVE_RUN,
            run=None,
            segments=[],
            projection=None,
            profiles=None,
            dendrogram=None,
            k_curve=[],
            **common,
        )
    rows = segments_of_run(session, tenant_id=tenant_id, run_id=run["id"])
    total = sum(row.size for row in rows)
    segments = [segment_public(row, total, common["currency"]) for row in rows]
    pictures = repo.pictures(session, tenant_id=tenant_id, run_id=run["id"])
    metrics = run["metrics"] or {}
    common["colors"] |= segment_colors(segment.key for segment in segments)
    return DashboardData(
        message=None if segments else "the active segmentation has no segments",
        run=_active_run(session, tenant_id, run, metrics, total),
        segments=[_segment(segment) for segment in segments],
        projection=_projection(pictures["projection"]),
        profiles=_profiles(segments),
        dendrogram=_dendrogram(pictures["dendrogram"]),
        k_curve=_k_curve(metrics.get("k_curve")),
        **common,
    )


def _active_run(
    session: Session, tenant_id: int, run: dict[str, Any], metrics: dict[str, Any], total: int
) -> ActiveRun:
    known = {name: number(metrics.get(name)) for name in RunMetrics.model_fields}
    previous = known.pop("previous_run_id")
    note = None
    if previous is not None:
        note = repo.comparison_note(
            session, tenant_id=tenant_id, run_id=run["id"], previous=int(previous)
        )
    k = (run["params"] or {}).get("k")
    return ActiveRun(
        id=run["id"],
        algorithm=run["algorithm"],
        feature_set=run["feature_set"],
        k=k if isinstance(k, int | str) else None,
        seed=run["seed"],
        finished_at=run["finished_at"],
        activated_at=run["activated_at"],
        customers=total,
        metrics=RunMetrics(**known, previous_run_id=None if previous is None else int(previous)),
        changes_note=note,
    )


def _segment(segment: SegmentPublic) -> DashboardSegment:
    stats = segment.stats
    return DashboardSegment(
        key=segment.key,
        name=segment.name,
        description=segment.description,
        size=segment.size,
        share=segment.share,
        revenue_share=stats.revenue_share,
        clv_share=stats.clv_share,
        mean_clv=stats.mean_clv,
        clv_note=stats.clv_note,
        jaccard_previous=stats.jaccard_previous,
        rule=segment.rules.text,
        fidelity=segment.rules.fidelity,
        coverage=segment.rules.coverage,
        precision=segment.rules.precision,
        low_coverage=segment.rules.low_coverage,
    )


def _projection(raw: Any) -> Projection | None:
    """``{"method", "points": [[x, y, key], ...]}``, thinned evenly to at most MAX_POINTS."""
    if not isinstance(raw, dict) or not isinstance(raw.get("points"), list):
        return None
    points = [
        p
        for p in raw["points"]
        if isinstance(p, list | tuple)
        and len(p) >= 3
        and number(p[0]) is not None
        and number(p[1]) is not None
    ]
    step = max(1, -(-len(points) // MAX_POINTS))
    points = points[::step]
    if not points:
        return None
    return Projection(
        method=str(raw.get("method") or "pca"),
        x=[float(p[0]) for p in points],
        y=[float(p[1]) for p in points],
        keys=[str(p[2]) for p in points],
    )


def _profiles(segments: list[SegmentPublic]) -> Profiles | None:
    """Lifts of the features that set segments apart most, one row per segment."""
    strongest: dict[str, float] = {}
    for segment in segments:
        for feature in segment.profile:
            if feature.lift is not None:
                strongest[feature.name] = max(strongest.get(feature.name, 0.0), abs(feature.lift))
    if not strongest:
        return None
    names = sorted(strongest, key=lambda name: -strongest[name])[:MAX_PROFILE_FEATURES]
    lifts = []
    for segment in segments:
        by_name = {feature.name: feature.lift for feature in segment.profile}
        lifts.append([by_name.get(name) for name in names])
    return Profiles(
        features=names,
        labels=[label(name).text for name in names],
        keys=[s.key for s in segments],
        lifts=lifts,
    )


def _dendrogram(raw: Any) -> Dendrogram | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Dendrogram.model_validate(
            {
                "icoord": raw.get("icoord"),
                "dcoord": raw.get("dcoord"),
                "labels": [str(label) for label in raw.get("labels") or []],
            }
        )
    except ValueError:
        return None


def _k_curve(raw: Any) -> list[KPoint]:
    if not isinstance(raw, list):
        return []
    points = [
        KPoint(
            k=int(point["k"]),
            **{name: number(point.get(name)) for name in KPoint.model_fields if name != "k"},
        )
        for point in raw
        if isinstance(point, dict) and number(point.get("k")) is not None
    ]
    return sorted(points, key=lambda point: point.k)


def _run_sizes(row: dict[str, Any]) -> RunSizes:
    sizes = row["sizes"] if isinstance(row["sizes"], dict) else {}
    return RunSizes(
        id=row["id"],
        finished_at=row["finished_at"],
        active=row["active"],
        ari_previous=number(row["ari_previous"]),
        sizes={str(key): int(size) for key, size in sizes.items()},
    )


def _clv(raw: dict[str, Any] | None) -> ClvHistogram | None:
    return None if raw is None else ClvHistogram.model_validate(raw)
