"""The dashboard's queries: the active run's pictures, run history, the CLV histogram."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from shared.runs import RunStatus

RUNS_IN_HISTORY = 20
RECENT_RUNS = 8
CLV_BINS = 30

_PICTURES = text(
    """
    SELECT artifact -> 'projection' AS projection, artifact -> 'dendrogram' AS dendrogram
    FROM segmentation_run WHERE tenant_id = :tenant AND id = :id
    """
)
_HISTORY = text(
    """
    SELECT * FROM (
        SELECT r.id, r.created_at, r.finished_at, r.active,
               r.metrics -> 'ari_previous' AS ari_previous,
               coalesce(jsonb_object_agg(s.key, s.size) FILTER (WHERE s.key IS NOT NULL),
                        '{}'::jsonb) AS sizes
        FROM segmentation_run r LEFT JOIN segment s ON s.run_id = r.id
        WHERE r.tenant_id = :tenant AND r.status = :succeeded_status
        GROUP BY r.id ORDER BY r.created_at DESC, r.id DESC LIMIT :limit
    ) recent ORDER BY created_at, id
    """
)
_RECENT = text(
    """
    SELECT id, status, progress, algorithm, created_at, finished_at, active, error
    FROM segmentation_run WHERE tenant_id = :tenant ORDER BY created_at DESC, id DESC
    LIMIT :limit
    """
)
# Whether /v1/segmentations/{id}/changes can compare two runs: both succeeded, on one
# feature set, each with its fitted model stored.
_COMPARABLE = text(
    """
    SELECT r.id, r.status = :succeeded_status AND r.artifact ? 'model' AS usable, r.feature_set
    FROM segmentation_run r WHERE r.tenant_id = :tenant AND r.id IN (:run, :previous)
    """
)
# The top percent is folded into the last bin, so one whale does not squash the picture.
_CLV_BOUNDS = text(
    """
    SELECT count(*) AS count, min(clv) AS low, avg(clv) AS mean,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY clv) AS median,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY clv) AS high, max(clv) AS top
    FROM customer_score WHERE tenant_id = :tenant AND clv IS NOT NULL
    """
)
_CLV_COUNTS = text(
    """
    SELECT coalesce(m.segment_key, '') AS key,
           least(greatest(width_bucket(s.clv, :low, :high, :bins), 1), :bins) AS bin,
           count(*) AS count
    FROM customer_score s
    LEFT JOIN segment_membership m ON m.customer_pk = s.customer_pk
    WHERE s.tenant_id = :tenant AND s.clv IS NOT NULL
    GROUP BY 1, 2
    """
)


def pictures(session: Session, *, tenant_id: int, run_id: int) -> dict[str, Any]:
    """The run's 2-D map and dendrogram as stored (either may be None)."""
    row = session.execute(_PICTURES, {"tenant": tenant_id, "id": run_id}).mappings().first()
    return dict(row) if row else {"projection": None, "dendrogram": None}


def comparison_note(session: Session, *, tenant_id: int, run_id: int, previous: int) -> str | None:
    """None when the run can be compared with ``previous``, else why not (as the dashboard
    says it), so the page asks for the changes only when they can be given."""
    params = {
        "tenant": tenant_id,
        "run": run_id,
        "previous": previous,
        "succeeded_status": RunStatus.SUCCEEDED,
    }
    rows = {row["id"]: row for row in session.execute(_COMPARABLE, params).mappings()}
    if previous not in rows:
        return f"run #{previous} no longer exists"
    if run_id not in rows or not rows[run_id]["usable"]:
        return "this run has no stored model to assign customers with"
    if not rows[previous]["usable"]:
        return f"run #{previous} has no stored model to assign customers with"
    if rows[run_id]["feature_set"] != rows[previous]["feature_set"]:
        return f"run #{previous} was trained on another feature set"
    return None


def run_history(session: Session, *, tenant_id: int) -> list[dict[str, Any]]:
    params = {
        "tenant": tenant_id,
        "limit": RUNS_IN_HISTORY,
        "succeeded_status": RunStatus.SUCCEEDED,
    }
    return [dict(row) for row in session.execute(_HISTORY, params).mappings()]


def recent_runs(session: Session, *, tenant_id: int) -> list[dict[str, Any]]:
    params = {"tenant": tenant_id, "limit": RECENT_RUNS}
    return [dict(row) for row in session.execute(_RECENT, params).mappings()]


def clv_histogram(session: Session, *, tenant_id: int) -> dict[str, Any] | None:
    """Equal-width bins from the lowest CLV to the 99th percentile, counted per segment."""
    bounds = session.execute(_CLV_BOUNDS, {"tenant": tenant_id}).mappings().one()
    if not bounds["count"]:
        return None
    low, high = float(bounds["low"]), float(bounds["high"])
    if high <= low:
        high = low + 1.0
    width = (high - low) / CLV_BINS
    counts: dict[str, list[int]] = {}
    params = {"tenant": tenant_id, "low": low, "high": high, "bins": CLV_BINS}
    for row in session.execute(_CLV_COUNTS, params).mappings():
        counts.setdefault(row["key"], [0] * CLV_BINS)[row["bin"] - 1] += row["count"]
    return {
        "edges": [low + width * i for i in range(CLV_BINS + 1)],
        "series": [{"key": key, "counts": values} for key, values in sorted(counts.items())],
        "count": bounds["count"],
        "mean": bounds["mean"],
        "median": bounds["median"],
        "clipped_at": high if float(bounds["top"]) > high else None,
    }
