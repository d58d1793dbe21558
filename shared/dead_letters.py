"""Dead letters for the operator: list them, show one, replay them.

Replaying a dead letter moves its work back into the outbox, in one transaction: the
dead letter is deleted and an outbox row for the same task and subject is enqueued (it
coalesces with one already pending). The relay publishes it like any other work and the
consumer, idempotent, does it at most once in effect. Replaying the same dead letter
again finds nothing to replay, so a repeated or concurrent replay adds no work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlmodel import Session

from shared.contracts import queue_for
from shared.outbox import enqueue


@dataclass(frozen=True)
class DeadLetterView:
    id: int
    tenant_id: int
    task_name: str
    subject_id: int
    customer_pk: int | None
    attempts: int
    reason: str
    created_at: datetime


_COLUMNS = "id, tenant_id, task_name, subject_id, customer_pk, attempts, reason, created_at"


def list_dead_letters(
    session: Session, *, task_name: str | None = None, limit: int = 100
) -> list[DeadLetterView]:
    rows = session.execute(
        text(
            f"SELECT {_COLUMNS} FROM dead_letter"
            " WHERE CAST(:task AS text) IS NULL OR task_name = :task ORDER BY id LIMIT :limit"
        ),
        {"task": task_name, "limit": limit},
    ).all()
    return [DeadLetterView(*row) for row in rows]


def read_dead_letter(session: Session, *, dead_letter_id: int) -> DeadLetterView | None:
    row = session.execute(
        text(f"SELECT {_COLUMNS} FROM dead_letter WHERE id = :id"),
        {"id": dead_letter_id},
    ).first()
    return DeadLetterView(*row) if row else None


_TAKE = text(
    "DELETE FROM dead_letter WHERE id = ANY(:ids) "
    "RETURNING id, tenant_id, task_name, subject_id, customer_pk"
)


def replay_dead_letters(session: Session, *, dead_letter_ids: list[int]) -> list[int]:
    """Put the work of these dead letters back into the outbox; the ids replayed now.

    Ids that are gone (replayed already, erased, never there) are left out of the answer.
    Commits with the caller's transaction, so a failure leaves every dead letter as it was.
    """
    taken = session.execute(_TAKE, {"ids": dead_letter_ids}).all()
    for _, tenant_id, task_name, subject_id, customer_pk in taken:
        queue_for(task_name)  # a task no longer routable stays a dead letter: raises
        enqueue(
            session,
            tenant_id=tenant_id,
            task_name=task_name,
            subject_ids=[subject_id],
            customer_pks=[customer_pk],
        )
    return sorted(int(row[0]) for row in taken)
