"""Reading segmentation runs for the API (their writes belong to ``runs``).

Reads select columns explicitly: a run's ``artifact`` (the fitted model and the 2-D map)
is large, and only the parts a caller needs leave the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from shared.cursors import position

RUN_COLUMNS = """
    r.id, r.status, r.progress, r.algorithm, r.feature_set, r.params, r.data_window,
    r.metrics, r.library_versions, r.seed, r.active, r.error, r.created_at, r.started_at,
    r.finished_at, r.activated_at
"""

_RUN = text(
    f"SELECT {RUN_COLUMNS} FROM segmentation_run r WHERE r.tenant_id = :tenant AND r.id = :id"
)
_RUNS = text(
    f"""
    SELECT {RUN_COLUMNS} FROM segmentation_run r
    WHERE r.tenant_id = :tenant
      AND (CAST(:before_at AS timestamptz) IS NULL OR (r.created_at, r.id) < (:before_at, :before))
    ORDER BY r.created_at DESC, r.id DESC LIMIT :limit
    """
)
_SEGMENT_SUMMARIES = text(
    """
    SELECT run_id, key, name, size FROM segment
    WHERE run_id = ANY(:runs) ORDER BY run_id, size DESC, key
    """
)
_ACTIVE = text(
    f"""
    SELECT {RUN_COLUMNS}, r.artifact -> 'feature_names' AS feature_names
    FROM segmentation_run r WHERE r.tenant_id = :tenant AND r.active
    """
)


def read_run(session: Session, *, tenant_id: int, run_id: int) -> dict[str, Any] | None:
    """One of the tenant's runs with its segments, or None."""
    row = session.execute(_RUN, {"tenant": tenant_id, "id": run_id}).mappings().first()
    if row is None:
        return None
    return _with_segments(session, [dict(row)])[0]


def list_runs(
    session: Session, *, tenant_id: int, limit: int, before: int | None
) -> list[dict[str, Any]]:
    """The tenant's runs, newest first, older than run ``before`` when given."""
    before_at = position(
        session, table="segmentation_run", tenant_id=tenant_id, cursor=before, field="before"
    )
    params = {"tenant": tenant_id, "limit": limit, "before": before, "before_at": before_at}
    rows = [dict(row) for row in session.execute(_RUNS, params).mappings()]
    return _with_segments(session, rows)


def active_run(session: Session, *, tenant_id: int) -> dict[str, Any] | None:
    """The tenant's active run (without its artifact, but with its feature names)."""
    row = session.execute(_ACTIVE, {"tenant": tenant_id}).mappings().first()
    return None if row is None else dict(row)


def _with_segments(session: Session, runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if runs:
        ids = [run["id"] for run in runs]
        for row in session.execute(_SEGMENT_SUMMARIES, {"runs": ids}).mappings():
            by_run[row["run_id"]].append(
                {"key": row["key"], "name": row["name"], "size": row["size"]}
            )
    return [{**run, "params": run["params"] or {}, "segments": by_run[run["id"]]} for run in runs]
