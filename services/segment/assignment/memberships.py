"""Writing memberships: the current segment per customer, every change into the history.

A change of segment is also work for personalize (the customer's offers depend on it),
enqueued in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session

from shared.contracts import PERSONALIZE_REFRESH_CUSTOMERS
from shared.outbox import enqueue

_CURRENT = text(
    "SELECT customer_pk, segment_key FROM segment_membership "
    "WHERE tenant_id = :tenant AND customer_pk = ANY(:pks)"
)
_HISTORY = text(
    """
    INSERT INTO membership_history (tenant_id, customer_pk, run_id, from_key, to_key, reason)
    SELECT :tenant, u.pk, :run, u.old, u.new, CAST(u.reason AS jsonb)
    FROM unnest(CAST(:pks AS bigint[]), CAST(:old AS text[]), CAST(:new AS text[]),
                CAST(:reasons AS text[])) AS u(pk, old, new, reason)
    """
)
_UPSERT = text(
    """
    INSERT INTO segment_membership AS m (customer_pk, tenant_id, run_id, segment_key, since,
                                         reason)
    SELECT u.pk, :tenant, :run, u.key, now(), CAST(u.reason AS jsonb)
    FROM unnest(CAST(:pks AS bigint[]), CAST(:keys AS text[]), CAST(:reasons AS text[]))
         AS u(pk, key, reason)
    ON CONFLICT (customer_pk) DO UPDATE SET
        run_id = EXCLUDED.run_id,
        since = CASE WHEN m.segment_key = EXCLUDED.segment_key THEN m.since ELSE now() END,
        reason = CASE WHEN m.segment_key = EXCLUDED.segment_key THEN m.reason
                      ELSE EXCLUDED.reason END,
        segment_key = EXCLUDED.segment_key
    """
)


def current_keys(session: Session, tenant_id: int, pks: Sequence[int]) -> dict[int, str]:
    rows = session.execute(_CURRENT, {"tenant": tenant_id, "pks": list(pks)})
    return {int(pk): str(key) for pk, key in rows}


def write_memberships(
    session: Session,
    *,
    tenant_id: int,
    run_id: int,
    pks: Sequence[int],
    keys: Sequence[str],
    reasons: Sequence[dict[str, Any]],
) -> list[int]:
    """Set each customer's segment; the customers whose segment changed."""
    before = current_keys(session, tenant_id, pks)
    changed = [
        i for i, (pk, key) in enumerate(zip(pks, keys, strict=True)) if before.get(pk) != key
    ]
    encoded = [orjson.dumps(reason).decode() for reason in reasons]
    if changed:
        session.execute(
            _HISTORY,
            {
                "tenant": tenant_id,
                "run": run_id,
                "pks": [pks[i] for i in changed],
                "old": [before.get(pks[i]) for i in changed],
                "new": [keys[i] for i in changed],
                "reasons": [encoded[i] for i in changed],
            },
        )
    session.execute(
        _UPSERT,
        {
            "tenant": tenant_id,
            "run": run_id,
            "pks": list(pks),
            "keys": list(keys),
            "reasons": encoded,
        },
    )
    moved = [pks[i] for i in changed]
    enqueue(
        session,
        tenant_id=tenant_id,
        task_name=PERSONALIZE_REFRESH_CUSTOMERS,
        subject_ids=moved,
        customer_pks=moved,
    )
    return moved
