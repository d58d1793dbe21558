"""Decision records into Postgres: the worker's drain of the stream, and the API's
fallback answers (given while Redis was unreachable). One statement for both.

A record of a customer erased since (their id hash suppressed) is dropped: erasure may
run while their decisions still wait in the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session

# Raw SQL: one set-based statement per drained batch of up to thousands of decisions.
_INSERT = text(
    """
    INSERT INTO decision (decision_id, tenant_id, customer_pk, subject_hash, placement,
        segment_key, strategy, offers, eligible, policy_version, experiment_id, arm, personalised,
        algorithm, context, created_at)
    SELECT d.decision_id, d.tenant_id, c.id, d.subject_hash, d.placement, d.segment_key,
        d.strategy, d.offers, d.eligible, d.policy_version, d.experiment_id, d.arm, d.personalised,
        d.algorithm, d.context, d.created_at
    FROM jsonb_to_recordset(CAST(:records AS jsonb)) AS d(
        decision_id text, tenant_id bigint, customer_pk bigint, subject_hash text,
        placement text, segment_key text, strategy text, offers jsonb, eligible text[],
        policy_version integer, experiment_id bigint, arm text, personalised boolean,
        algorithm text, context float8[], created_at timestamptz)
    LEFT JOIN customer c ON c.id = d.customer_pk AND c.tenant_id = d.tenant_id
    WHERE NOT EXISTS (SELECT 1 FROM suppression s
                      WHERE s.tenant_id = d.tenant_id AND s.subject_hash = d.subject_hash)
    ON CONFLICT (decision_id) DO NOTHING
    RETURNING decision_id, tenant_id, placement, segment_key, personalised, offers, context
    """
)


@dataclass(frozen=True)
class StoredDecision:
    """A decision newly stored (not one stored before: those were counted then)."""

    decision_id: str
    tenant_id: int
    placement: str
    segment_key: str | None
    personalised: bool
    offer_ids: tuple[str, ...]
    context: tuple[float, ...] | None = None  # what the contextual bandit learns from


def insert_decisions(
    session: Session, records: Sequence[bytes | dict[str, Any]]
) -> list[StoredDecision]:
    """Store these decision records (JSON as logged); those newly stored."""
    if not records:
        return []
    rows = [orjson.loads(r) if isinstance(r, bytes) else r for r in records]
    result = session.execute(_INSERT, {"records": orjson.dumps(rows).decode()})
    return [
        StoredDecision(
            d,
            t,
            p,
            s,
            bool(pers),
            tuple(o["offer_id"] for o in offers),
            tuple(context) if context is not None else None,
        )
        for d, t, p, s, pers, offers, context in result
    ]
