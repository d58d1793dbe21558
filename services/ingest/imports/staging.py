"""Bulk events through Postgres COPY: a staging table per import, merged chunk by chunk.

COPY is the fastest way into Postgres; the merge then de-duplicates against what is
stored, creates stub customers for new ids and returns who changed, in three statements
per chunk. The staging table is temporary and disappears with the import's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlmodel import Session

from services.ingest.imports.events import copy_line
from services.ingest.records.schemas import EventIn

_CREATE = text(
    """
    CREATE TEMP TABLE IF NOT EXISTS import_event (
        event_id text, customer_id text, type text, occurred_at timestamptz,
        channel text, properties jsonb
    ) ON COMMIT DROP
    """
)
_COPY = (
    "COPY import_event (event_id, customer_id, type, occurred_at, channel, properties) FROM STDIN"
)
# Most customers of a chunk exist already: an anti-join finds the few that do not far
# more cheaply than an attempted insert per customer (ON CONFLICT still settles races).
_ENSURE_CUSTOMERS = text(
    """
    INSERT INTO customer (tenant_id, customer_id)
    SELECT DISTINCT :t, s.customer_id FROM import_event s
    WHERE NOT EXISTS (
        SELECT 1 FROM customer c WHERE c.tenant_id = :t AND c.customer_id = s.customer_id
    )
    ORDER BY 2
    ON CONFLICT (tenant_id, customer_id) DO NOTHING
    """
)
_MERGE = text(
    """
    INSERT INTO event (tenant_id, event_id, customer_pk, type, occurred_at, channel, properties)
    SELECT DISTINCT ON (s.event_id) :t, s.event_id, c.id, s.type, s.occurred_at, s.channel,
           s.properties
    FROM import_event s
    JOIN customer c ON c.tenant_id = :t AND c.customer_id = s.customer_id
    ORDER BY s.event_id
    ON CONFLICT (tenant_id, event_id) DO NOTHING
    RETURNING customer_pk
    """
)


def copy_lines(session: Session, payload: bytes) -> None:
    """COPY ready-made lines into the staging table in one write (the GIL is free meanwhile)."""
    session.execute(_CREATE)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(_COPY) as copy:
        copy.write(payload)


def merge_staged(session: Session, tenant_id: int) -> list[int]:
    """Store the staged events that are new; the customer pk of each one inserted."""
    session.execute(_ENSURE_CUSTOMERS, {"t": tenant_id})
    inserted = [pk for (pk,) in session.execute(_MERGE, {"t": tenant_id})]
    session.execute(text("TRUNCATE import_event"))
    return inserted


def merge_events(session: Session, tenant_id: int, records: Sequence[EventIn]) -> list[int]:
    """Store new events; the customer pk of each one inserted (duplicates are skipped)."""
    copy_lines(session, "".join(copy_line(r) for r in records).encode())
    return merge_staged(session, tenant_id)
