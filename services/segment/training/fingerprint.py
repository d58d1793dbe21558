"""What a segmentation was trained on, as one hash: the tenant's source records and the
run's parameters.

A training records the hash it started from (``metrics.data_fingerprint``). A request
that asks to skip an unchanged retrain (`unchanged_active_run`) gets the tenant's active
run back when its hash equals the one the same request would train from now: same
records, same parameters, so the same segmentation (the model is seeded). Records are
counted per source with their newest id (and, for profiles, their newest update), so an
added, removed or re-sent record changes the hash; the text analyses are among them,
because sentiment features read them and they arrive after the texts.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session

from services.segment.segmentations.runs import SegmentationParams

_SOURCES = text(
    """
    SELECT 'customer' AS source, count(*) AS n, max(id) AS last,
           CAST(max(updated_at) AS text) AS touched
    FROM customer WHERE tenant_id = :t
    UNION ALL SELECT 'orders', count(*), max(id), NULL FROM orders WHERE tenant_id = :t
    UNION ALL SELECT 'event', count(*), max(id), NULL FROM event WHERE tenant_id = :t
    UNION ALL SELECT 'review', count(*), max(id), NULL FROM review WHERE tenant_id = :t
    UNION ALL SELECT 'transcript', count(*), max(id), NULL FROM transcript WHERE tenant_id = :t
    UNION ALL SELECT 'text_analysis', count(*), max(id), NULL FROM text_analysis
              WHERE tenant_id = :t
    """
)
# What makes two requests the same training; who asked and how to promote do not.
_NOT_TRAINING = {"requested_by", "promote"}
_ACTIVE = text(
    "SELECT id, params, metrics ->> 'data_fingerprint' AS fingerprint "
    "FROM segmentation_run WHERE tenant_id = :t AND active"
)


def data_fingerprint(session: Session, *, tenant_id: int, params: SegmentationParams) -> str:
    sources = [list(row) for row in session.execute(_SOURCES, {"t": tenant_id})]
    training = {k: v for k, v in params.stored().items() if k not in _NOT_TRAINING}
    payload = orjson.dumps({"sources": sources, "params": training}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


def unchanged_active_run(
    session: Session, *, tenant_id: int, params: SegmentationParams
) -> int | None:
    """The active run, when it was trained on the records the tenant has now and with
    these parameters; None otherwise."""
    row: Any = session.execute(_ACTIVE, {"t": tenant_id}).first()
    if row is None or row.fingerprint is None:
        return None
    now = data_fingerprint(session, tenant_id=tenant_id, params=params)
    return int(row.id) if row.fingerprint == now else None
