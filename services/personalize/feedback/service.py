"""Feedback into Postgres, checked against the decision log, with the policy update queued
in the same transaction (one coalescing outbox row per placement)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis import Redis
from sqlalchemy import text
from sqlmodel import Session, col, select

from services.personalize.cache import decision_key
from services.personalize.feedback.schemas import FeedbackIn, FeedbackResult, RejectedFeedback
from shared.contracts import PERSONALIZE_APPLY_FEEDBACK
from shared.models.personalize import Placement
from shared.outbox import enqueue
from shared.web.responses import FieldError


@dataclass(frozen=True)
class Logged:
    """What feedback needs of its decision."""

    subject_hash: str
    customer_pk: int | None
    placement: str
    offers: frozenset[str]

    @classmethod
    def of(cls, record: dict[str, Any]) -> Logged:
        offers = frozenset(o["offer_id"] for o in record["offers"])
        return cls(record["subject_hash"], record["customer_pk"], record["placement"], offers)


@dataclass
class Batch:
    result: FeedbackResult = field(default_factory=FeedbackResult)
    rows: list[dict[str, Any]] = field(default_factory=list)
    placements: set[str] = field(default_factory=set)

    def reject(self, index: int, name: str, message: str) -> None:
        self.result.rejected.append(
            RejectedFeedback(index=index, errors=[FieldError(field=name, message=message)])
        )


_DECISIONS = text(
    "SELECT decision_id, subject_hash, customer_pk, placement, offers FROM decision "
    "WHERE tenant_id = :t AND decision_id = ANY(:ids)"
)
_SUPPRESSED = text(
    "SELECT subject_hash FROM suppression WHERE tenant_id = :t AND subject_hash = ANY(:h)"
)
# Raw SQL: a whole batch of up to 2,500 events in one statement.
_INSERT = text(
    """
    INSERT INTO feedback (tenant_id, event_id, decision_id, subject_hash, customer_pk,
        offer_id, kind, value, occurred_at)
    SELECT :t, f.event_id, f.decision_id, f.subject_hash, c.id, f.offer_id, f.kind,
        f.value, coalesce(f.occurred_at, now())
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS f(event_id text, decision_id text,
        subject_hash text, customer_pk bigint, offer_id text, kind text, value float8,
        occurred_at timestamptz)
    LEFT JOIN customer c ON c.id = f.customer_pk AND c.tenant_id = :t
    ON CONFLICT (tenant_id, event_id) DO NOTHING
    """
)


def _logged(
    session: Session, redis: Redis, tenant_id: int, ids: Sequence[str]
) -> dict[str, Logged]:
    """The decisions named, from Postgres, or from Redis while still on their way there."""
    found = {
        row.decision_id: Logged(
            row.subject_hash,
            row.customer_pk,
            row.placement,
            frozenset(o["offer_id"] for o in row.offers),
        )
        for row in session.execute(_DECISIONS, {"t": tenant_id, "ids": list(ids)})
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raw = redis.mget([decision_key(tenant_id, i) for i in missing])
        for decision_id, record in zip(missing, raw, strict=True):  # type: ignore[arg-type]
            if record is not None:
                found[decision_id] = Logged.of(orjson.loads(record))
    return found


def record_feedback(
    session: Session, redis: Redis, *, tenant_id: int, events: Sequence[tuple[int, FeedbackIn]]
) -> Batch:
    """Store the valid ``(index, event)`` pairs; the outcome per event."""
    batch = Batch()
    logged = _logged(session, redis, tenant_id, sorted({e.decision_id for _, e in events}))
    hashes = sorted({d.subject_hash for d in logged.values()})
    suppressed = set(session.execute(_SUPPRESSED, {"t": tenant_id, "h": hashes}).scalars())
    for index, event in events:
        decision = logged.get(event.decision_id)
        if decision is None:
            batch.reject(index, "decision_id", "no such decision for this key's tenant")
        elif event.offer_id not in decision.offers:
            batch.reject(index, "offer_id", "this decision did not show this offer")
        elif decision.subject_hash in suppressed:
            batch.result.suppressed += 1
        else:
            batch.rows.append(_row(event, decision))
            batch.placements.add(decision.placement)
    if batch.rows:
        stored = session.execute(
            _INSERT, {"t": tenant_id, "rows": orjson.dumps(batch.rows).decode()}
        )
        batch.result.accepted = int(stored.rowcount)  # type: ignore[attr-defined]
        batch.result.duplicates = len(batch.rows) - batch.result.accepted
        _queue_learning(session, tenant_id, batch.placements)
    batch.result.rejected_count = len(batch.result.rejected)
    return batch


def _row(event: FeedbackIn, decision: Logged) -> dict[str, Any]:
    return {
        "event_id": event.key(),
        "decision_id": event.decision_id,
        "subject_hash": decision.subject_hash,
        "customer_pk": decision.customer_pk,
        "offer_id": event.offer_id,
        "kind": event.kind,
        "value": event.value,
        "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
    }


def _queue_learning(session: Session, tenant_id: int, placements: set[str]) -> None:
    ids = session.exec(
        select(Placement.id).where(
            Placement.tenant_id == tenant_id, col(Placement.name).in_(sorted(placements))
        )
    ).all()
    enqueue(
        session,
        tenant_id=tenant_id,
        task_name=PERSONALIZE_APPLY_FEEDBACK,
        subject_ids=[int(i) for i in ids if i is not None],
    )
