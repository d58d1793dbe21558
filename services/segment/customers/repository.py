"""Everything the segment service knows about one customer: plain SQL, read only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from services.segment.features import FEATURE_SETS
from services.segment.features.sql import vectors_sql

RECENT_CHANGES = 10

_CUSTOMER = text("SELECT id FROM customer WHERE tenant_id = :tenant AND customer_id = :customer_id")
# The name comes from the active run when it has the key, else from the assigning run.
_MEMBERSHIP = text(
    """
    SELECT m.segment_key AS key, coalesce(a.name, o.name) AS name, m.since, m.reason,
           m.run_id AS segmentation_id
    FROM segment_membership m
    LEFT JOIN segment a ON a.run_id = CAST(:active AS bigint) AND a.key = m.segment_key
    LEFT JOIN segment o ON o.run_id = m.run_id AND o.key = m.segment_key
    WHERE m.customer_pk = :pk AND m.tenant_id = :tenant
    """
)
_SCORES = text(
    """
    SELECT clv, p_alive, expected_purchases, churn, anomaly, updated_at
    FROM customer_score WHERE customer_pk = :pk AND tenant_id = :tenant
    """
)
# One analysis per review or transcript (the newest model version's), then per kind.
_SENTIMENT = text(
    """
    WITH latest AS (
        SELECT DISTINCT ON (source_kind, source_pk) source_kind, label, score, occurred_at
        FROM text_analysis
        WHERE tenant_id = :tenant AND customer_pk = :pk AND status = 'ok'
        ORDER BY source_kind, source_pk, analyzed_at DESC, id DESC
    )
    SELECT source_kind, count(*) AS count, avg(score) AS mean_score,
           (array_agg(label ORDER BY occurred_at DESC))[1] AS last_label,
           max(occurred_at) AS last_at
    FROM latest GROUP BY source_kind
    """
)
_HISTORY = text(
    """
    SELECT from_key, to_key, changed_at, reason, run_id AS segmentation_id
    FROM membership_history WHERE tenant_id = :tenant AND customer_pk = :pk
    ORDER BY changed_at DESC, id DESC LIMIT :limit
    """
)


def customer_pk(session: Session, *, tenant_id: int, customer_id: str) -> int | None:
    pk = session.execute(_CUSTOMER, {"tenant": tenant_id, "customer_id": customer_id}).scalar()
    return None if pk is None else int(pk)


def features(
    session: Session, *, tenant_id: int, pk: int, feature_set: str
) -> dict[str, Any] | None:
    """The customer's vector (stored features and latest scores) and its cut-off."""
    definition = FEATURE_SETS.get(feature_set)
    if definition is None:
        return None
    query = text(vectors_sql(definition, where="f.customer_pk = :pk AND f.tenant_id = :tenant"))
    row = session.execute(query, {"tenant": tenant_id, "pk": pk}).mappings().first()
    return None if row is None else dict(row)


def membership(
    session: Session, *, tenant_id: int, pk: int, active_run_id: int | None
) -> dict[str, Any] | None:
    params = {"tenant": tenant_id, "pk": pk, "active": active_run_id}
    row = session.execute(_MEMBERSHIP, params).mappings().first()
    return None if row is None else dict(row)


def scores(session: Session, *, tenant_id: int, pk: int) -> dict[str, Any] | None:
    row = session.execute(_SCORES, {"tenant": tenant_id, "pk": pk}).mappings().first()
    return None if row is None else dict(row)


def sentiment(session: Session, *, tenant_id: int, pk: int) -> dict[str, dict[str, Any]]:
    """Per source kind ("review", "transcript"): count, mean score, last label and time."""
    rows = session.execute(_SENTIMENT, {"tenant": tenant_id, "pk": pk}).mappings()
    return {row["source_kind"]: dict(row) for row in rows}


def recent_changes(session: Session, *, tenant_id: int, pk: int) -> list[dict[str, Any]]:
    params = {"tenant": tenant_id, "pk": pk, "limit": RECENT_CHANGES}
    return [dict(row) for row in session.execute(_HISTORY, params).mappings()]
