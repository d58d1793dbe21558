"""Queries about segments, their members and their history, read only: the segment rows
through their table model, the aggregates in plain SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from shared.models import Segment
from shared.runs import RunStatus

HISTORY_DAYS = 90
MAX_RUNS_IN_HISTORY = 100

_SEGMENT_IN_RUN = text(
    "SELECT 1 FROM segment WHERE tenant_id = :tenant AND run_id = :run AND key = :key"
)
# Current members, whichever run assigned them: keys are stable across retrains, and a
# re-assignment in progress must not hide anyone.
_MEMBERS = text(
    """
    SELECT m.customer_pk, c.customer_id, m.since, s.clv, s.p_alive
    FROM segment_membership m
    JOIN customer c ON c.id = m.customer_pk
    LEFT JOIN customer_score s ON s.customer_pk = m.customer_pk
    WHERE m.tenant_id = :tenant AND m.segment_key = :key AND m.customer_pk > :after
    ORDER BY m.customer_pk
    LIMIT :limit
    """
)
_SIZES = text(
    """
    SELECT * FROM (
        SELECT r.id AS segmentation_id, r.created_at, r.finished_at, r.active, s.name, s.size
        FROM segment s JOIN segmentation_run r ON r.id = s.run_id
        WHERE s.tenant_id = :tenant AND s.key = :key AND r.status = :succeeded_status
        ORDER BY r.created_at DESC, r.id DESC LIMIT :runs
    ) recent ORDER BY created_at, segmentation_id
    """
)
_FLOWS = text(
    """
    SELECT CAST(date_trunc('day', changed_at AT TIME ZONE 'UTC') AS date) AS day,
           count(*) FILTER (WHERE to_key = :key) AS entries,
           count(*) FILTER (WHERE from_key = :key) AS exits
    FROM membership_history
    WHERE tenant_id = :tenant AND (to_key = :key OR from_key = :key)
      AND from_key IS DISTINCT FROM to_key
      AND changed_at >= now() - make_interval(days => :days)
    GROUP BY 1 ORDER BY 1
    """
)


def segments_of_run(session: Session, *, tenant_id: int, run_id: int) -> list[Segment]:
    query = (
        select(Segment)
        .where(Segment.tenant_id == tenant_id, Segment.run_id == run_id)
        .order_by(col(Segment.size).desc(), col(Segment.key))
    )
    return list(session.exec(query))


_CURRENCY = text(
    "SELECT currency FROM orders WHERE tenant_id = :tenant"
    " GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1"
)


def shop_currency(session: Session, *, tenant_id: int) -> str | None:
    """The currency most of the tenant's orders are in (amounts in features are sums of
    order totals as stored, so they are in this currency); None without orders."""
    found = session.execute(_CURRENCY, {"tenant": tenant_id}).scalar_one_or_none()
    return None if found is None else str(found)


def segment_in_run(session: Session, *, tenant_id: int, run_id: int, key: str) -> bool:
    params = {"tenant": tenant_id, "run": run_id, "key": key}
    return session.execute(_SEGMENT_IN_RUN, params).first() is not None


def members(
    session: Session, *, tenant_id: int, key: str, after: int, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` current members with a customer pk above ``after``, in pk order."""
    params = {"tenant": tenant_id, "key": key, "after": after, "limit": limit}
    return [dict(row) for row in session.execute(_MEMBERS, params).mappings()]


def size_history(session: Session, *, tenant_id: int, key: str) -> list[dict[str, Any]]:
    """The size of the segment in each succeeded run that had its key, oldest first."""
    params = {
        "tenant": tenant_id,
        "key": key,
        "runs": MAX_RUNS_IN_HISTORY,
        "succeeded_status": RunStatus.SUCCEEDED,
    }
    return [dict(row) for row in session.execute(_SIZES, params).mappings()]


def daily_flows(
    session: Session, *, tenant_id: int, key: str, days: int = HISTORY_DAYS
) -> list[dict[str, Any]]:
    params = {"tenant": tenant_id, "key": key, "days": days}
    return [dict(row) for row in session.execute(_FLOWS, params).mappings()]
