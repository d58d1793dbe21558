"""Writing memberships: the current segment per customer, every change into the history.

Both statements read the assignments from one relation: an ``unnest`` of array
parameters for a few customers (a refresh), a temporary table filled by binary COPY for
a whole tenant (an activation). Keys and reasons repeat a lot, so each row carries the
number of its key and of its reason in two short lists.

Who hears of a change is the caller's business: one customer's move is work for
personalize about that customer, a new active segmentation is work about everyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import orjson
from sqlalchemy import text
from sqlmodel import Session

from services.segment.bulk import copy_temp_table

# Above this many customers the assignments travel by COPY instead of as arrays.
COPY_FROM = 5_000

_CURRENT = text(
    "SELECT customer_pk, segment_key FROM segment_membership "
    "WHERE tenant_id = :tenant AND customer_pk = ANY(:pks)"
)
_FROM_ARRAYS = (
    "unnest(CAST(:pks AS bigint[]), CAST(:key_nos AS bigint[]), CAST(:reason_nos AS bigint[]))"
    " AS a(pk, key_no, reason_no)"
)
_FROM_COPY = "assigned_segments a"
_KEY = "(CAST(:keys AS text[]))[a.key_no]"
_REASON = "(CAST(:reasons AS jsonb[]))[a.reason_no]"
_HISTORY = f"""
    INSERT INTO membership_history (tenant_id, customer_pk, run_id, from_key, to_key, reason)
    SELECT :tenant, a.pk, :run, m.segment_key, {_KEY}, {_REASON}
    FROM {{source}}
    LEFT JOIN segment_membership m ON m.customer_pk = a.pk
    WHERE m.segment_key IS DISTINCT FROM {_KEY}
    RETURNING customer_pk
"""
# A customer who stays keeps since and reason; a row with nothing new is not rewritten.
_UPSERT = f"""
    INSERT INTO segment_membership AS m (customer_pk, tenant_id, run_id, segment_key, since,
                                         reason)
    SELECT a.pk, :tenant, :run, {_KEY}, now(), {_REASON}
    FROM {{source}}
    ON CONFLICT (customer_pk) DO UPDATE SET
        run_id = EXCLUDED.run_id,
        since = CASE WHEN m.segment_key = EXCLUDED.segment_key THEN m.since ELSE now() END,
        reason = CASE WHEN m.segment_key = EXCLUDED.segment_key THEN m.reason
                      ELSE EXCLUDED.reason END,
        segment_key = EXCLUDED.segment_key
    WHERE (m.run_id, m.segment_key) IS DISTINCT FROM (EXCLUDED.run_id, EXCLUDED.segment_key)
"""


class EncodedReasons(NamedTuple):
    """Reasons given once each (``distinct``), with every customer's index into them."""

    distinct: list[dict[str, Any]]
    numbers: np.ndarray


def current_keys(session: Session, tenant_id: int, pks: Sequence[int]) -> dict[int, str]:
    rows = session.execute(_CURRENT, {"tenant": tenant_id, "pks": list(pks)})
    return {int(pk): str(key) for pk, key in rows}


def write_memberships(
    session: Session,
    *,
    tenant_id: int,
    run_id: int,
    pks: Sequence[int] | np.ndarray,
    keys: Sequence[str],
    reasons: Sequence[dict[str, Any]] | dict[str, Any] | EncodedReasons,
) -> list[int]:
    """Set each customer's segment; the customers whose segment changed.

    ``reasons``: one per customer, one for them all, or each distinct one once."""
    pk_array = np.asarray(pks, dtype=np.int64)
    distinct_keys, key_nos = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    if isinstance(reasons, EncodedReasons):
        encoded = [_json(reason) for reason in reasons.distinct]
        reason_nos = np.asarray(reasons.numbers, dtype=np.int64)
    elif isinstance(reasons, dict):
        encoded, reason_nos = [_json(reasons)], np.zeros(len(pk_array), dtype=np.int64)
    else:
        texts = [_json(reason) for reason in reasons]
        unique = list(dict.fromkeys(texts))
        number = {t: i for i, t in enumerate(unique)}
        encoded, reason_nos = unique, np.asarray([number[t] for t in texts], dtype=np.int64)
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "run": run_id,
        "keys": [str(key) for key in distinct_keys],
        "reasons": encoded,
    }
    # SQL arrays count from 1.
    columns = {"pk": pk_array, "key_no": key_nos.astype(np.int64) + 1, "reason_no": reason_nos + 1}
    if len(pk_array) >= COPY_FROM:
        copy_temp_table(session, "assigned_segments", columns)
        source = _FROM_COPY
    else:
        params |= {f"{name}s": values.tolist() for name, values in columns.items()}
        source = _FROM_ARRAYS
    moved = session.execute(text(_HISTORY.format(source=source)), params).scalars().all()
    session.execute(text(_UPSERT.format(source=source)), params)
    return [int(pk) for pk in moved]


def _json(reason: dict[str, Any]) -> str:
    return orjson.dumps(reason).decode()
