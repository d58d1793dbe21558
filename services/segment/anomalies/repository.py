"""Reads of anomaly runs, flags and alerts for the API: plain SQL, read only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from shared.cursors import position

_FLAGS = text(
    """
    SELECT f.id, c.customer_id, f.kind, f.reason, f.size, f.observed, f.expected,
           f.window_start, f.window_end, f.detected_at, f.run_id
    FROM anomaly_flag f JOIN customer c ON c.id = f.customer_pk
    WHERE f.tenant_id = :tenant
      AND (CAST(:before_at AS timestamptz) IS NULL
           OR (f.detected_at, f.id) < (:before_at, :before))
      AND (CAST(:since AS timestamptz) IS NULL OR f.detected_at >= :since)
      AND (CAST(:kind AS text) IS NULL OR f.kind = :kind)
      AND (CAST(:customer_id AS text) IS NULL OR c.customer_id = :customer_id)
    ORDER BY f.detected_at DESC, f.id DESC LIMIT :limit
    """
)
_ALERTS = text(
    """
    SELECT id, segment_key, segmentation_run_id AS segmentation_id, metric, observed,
           expected, lower, upper, size, reason, detected_at, run_id
    FROM segment_alert
    WHERE tenant_id = :tenant
      AND (CAST(:before_at AS timestamptz) IS NULL OR (detected_at, id) < (:before_at, :before))
      AND (CAST(:since AS timestamptz) IS NULL OR detected_at >= :since)
    ORDER BY detected_at DESC, id DESC LIMIT :limit
    """
)
_RUN = text(
    """
    SELECT id, status, progress, params, data_window, metrics, library_versions, error,
           created_at, started_at, finished_at
    FROM anomaly_run WHERE tenant_id = :tenant AND id = :run
    """
)
_BY_DAY = text(
    """
    SELECT date_trunc('day', detected_at AT TIME ZONE 'UTC')::date AS day, kind,
           count(*) AS count
    FROM anomaly_flag
    WHERE tenant_id = :tenant AND detected_at >= now() - make_interval(days => :days)
    GROUP BY 1, 2 ORDER BY 1, 2
    """
)
RECENT_FLAGS = 10
_CUSTOMER_FLAGS = text(
    """
    SELECT kind, reason, size, detected_at FROM anomaly_flag
    WHERE tenant_id = :tenant AND customer_pk = :pk
    ORDER BY detected_at DESC, id DESC LIMIT :limit
    """
)


def list_flags(
    session: Session,
    *,
    tenant_id: int,
    limit: int,
    before: int | None,
    since: datetime | None,
    kind: str | None,
    customer_id: str | None,
) -> list[dict[str, Any]]:
    params = {
        "tenant": tenant_id,
        "limit": limit,
        "before": before,
        "before_at": position(
            session, table="anomaly_flag", tenant_id=tenant_id, cursor=before, field="before"
        ),
        "since": since,
        "kind": kind,
        "customer_id": customer_id,
    }
    return [dict(row) for row in session.execute(_FLAGS, params).mappings()]


def list_alerts(
    session: Session, *, tenant_id: int, limit: int, before: int | None, since: datetime | None
) -> list[dict[str, Any]]:
    before_at = position(
        session, table="segment_alert", tenant_id=tenant_id, cursor=before, field="before"
    )
    params = {
        "tenant": tenant_id,
        "limit": limit,
        "before": before,
        "before_at": before_at,
        "since": since,
    }
    return [dict(row) for row in session.execute(_ALERTS, params).mappings()]


def read_run(session: Session, *, tenant_id: int, run_id: int) -> dict[str, Any] | None:
    row = session.execute(_RUN, {"tenant": tenant_id, "run": run_id}).mappings().first()
    return None if row is None else dict(row)


def customer_flags(session: Session, *, tenant_id: int, pk: int) -> list[dict[str, Any]]:
    """The customer's latest flags, newest first (for the customer view)."""
    params = {"tenant": tenant_id, "pk": pk, "limit": RECENT_FLAGS}
    return [dict(row) for row in session.execute(_CUSTOMER_FLAGS, params).mappings()]


def counts_by_day(session: Session, *, tenant_id: int, days: int) -> list[dict[str, Any]]:
    """Flags per UTC day and kind over the last ``days`` days, oldest first."""
    params = {"tenant": tenant_id, "days": days}
    return [dict(row) for row in session.execute(_BY_DAY, params).mappings()]
