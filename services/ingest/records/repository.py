"""Set-based SQL for storing records: one statement per table per batch, never per row.

Inputs are sorted by their key so that concurrent batches take row locks in the same
order and cannot deadlock on each other. Every insert de-duplicates by (tenant, id).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import TextClause, text
from sqlmodel import Session

from services.ingest.records.schemas import (
    CustomerIn,
    EventIn,
    OrderIn,
    ProductIn,
    ReviewIn,
    TranscriptIn,
)


@functools.cache
def sql(statement: str) -> TextClause:
    """``text(statement)``, made once: parsing it again costs every group commit time."""
    return text(statement)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _rows(session: Session, statement: str, params: dict[str, Any]) -> Sequence[Any]:
    return session.execute(sql(statement), params).all()


def ensure_customers(session: Session, tenant_id: int, customer_ids: set[str]) -> dict[str, int]:
    """Customer pks by id, creating stub customers for ids seen for the first time."""
    ids = sorted(customer_ids)
    session.execute(
        sql(
            "INSERT INTO customer (tenant_id, customer_id) "
            "SELECT :t, u FROM unnest(CAST(:ids AS text[])) AS u "
            "ON CONFLICT (tenant_id, customer_id) DO NOTHING"
        ),
        {"t": tenant_id, "ids": ids},
    )
    rows = _rows(
        session,
        "SELECT customer_id, id FROM customer WHERE tenant_id = :t AND customer_id = ANY(:ids)",
        {"t": tenant_id, "ids": ids},
    )
    return {customer_id: pk for customer_id, pk in rows}  # noqa: C416 (rows are Row objects)


def upsert_customers(session: Session, tenant_id: int, records: Sequence[CustomerIn]) -> set[int]:
    """Insert or update customers; the pks of those that are new or changed."""
    rows = _rows(
        session,
        """
        INSERT INTO customer AS c (tenant_id, customer_id, signup_at, attributes, consent)
        SELECT :t, u.customer_id, u.signup_at, CAST(u.attributes AS jsonb), CAST(u.consent AS jsonb)
        FROM unnest(CAST(:ids AS text[]), CAST(:signup AS timestamptz[]),
                    CAST(:attributes AS text[]), CAST(:consent AS text[]))
             AS u(customer_id, signup_at, attributes, consent)
        ON CONFLICT (tenant_id, customer_id) DO UPDATE
            SET signup_at = EXCLUDED.signup_at, attributes = EXCLUDED.attributes,
                consent = EXCLUDED.consent, updated_at = now()
            WHERE (c.signup_at, c.attributes, c.consent)
                  IS DISTINCT FROM (EXCLUDED.signup_at, EXCLUDED.attributes, EXCLUDED.consent)
        RETURNING c.id
        """,
        {
            "t": tenant_id,
            "ids": [r.customer_id for r in records],
            "signup": [r.signup_at for r in records],
            "attributes": [_json(r.attributes) for r in records],
            "consent": [_json(r.consent) for r in records],
        },
    )
    return {pk for (pk,) in rows}


def upsert_contacts(
    session: Session, tenant_id: int, pks: Sequence[int], records: Sequence[CustomerIn]
) -> set[int]:
    """Store raw emails/phones in the restricted table; the pks whose contact changed."""
    rows = _rows(
        session,
        """
        INSERT INTO customer_contact AS cc (customer_pk, tenant_id, email, phone)
        SELECT u.pk, :t, u.email, u.phone
        FROM unnest(CAST(:pks AS bigint[]), CAST(:emails AS text[]), CAST(:phones AS text[]))
             AS u(pk, email, phone)
        ON CONFLICT (customer_pk) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone
            WHERE (cc.email, cc.phone) IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.phone)
        RETURNING cc.customer_pk
        """,
        {
            "t": tenant_id,
            "pks": list(pks),
            "emails": [r.email for r in records],
            "phones": [r.phone for r in records],
        },
    )
    return {pk for (pk,) in rows}


def replace_identity_links(
    session: Session, tenant_id: int, links: Sequence[tuple[int, str, str]]
) -> None:
    """Replace the hashed identity links of the customers in ``links`` (pk, kind, hash)."""
    pks = sorted({pk for pk, _, _ in links})
    session.execute(sql("DELETE FROM identity_link WHERE customer_pk = ANY(:pks)"), {"pks": pks})
    present = [link for link in links if link[2]]
    session.execute(
        sql(
            "INSERT INTO identity_link (tenant_id, customer_pk, kind, value_hash) "
            "SELECT :t, u.pk, u.kind, u.h FROM unnest(CAST(:pks AS bigint[]), "
            "CAST(:kinds AS text[]), CAST(:hashes AS text[])) AS u(pk, kind, h) "
            "ON CONFLICT DO NOTHING"
        ),
        {
            "t": tenant_id,
            "pks": [p for p, _, _ in present],
            "kinds": [k for _, k, _ in present],
            "hashes": [h for _, _, h in present],
        },
    )


def upsert_products(session: Session, tenant_id: int, records: Sequence[ProductIn]) -> int:
    rows = _rows(
        session,
        """
        INSERT INTO product AS p (tenant_id, product_id, name, category, price)
        SELECT :t, u.* FROM unnest(CAST(:ids AS text[]), CAST(:names AS text[]),
                                   CAST(:categories AS text[]), CAST(:prices AS numeric[]))
             AS u(product_id, name, category, price)
        ON CONFLICT (tenant_id, product_id) DO UPDATE
            SET name = EXCLUDED.name, category = EXCLUDED.category, price = EXCLUDED.price,
                updated_at = now()
            WHERE (p.name, p.category, p.price)
                  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.category, EXCLUDED.price)
        RETURNING p.id
        """,
        {
            "t": tenant_id,
            "ids": [r.product_id for r in records],
            "names": [r.name for r in records],
            "categories": [r.category for r in records],
            "prices": [round(r.price, 2) for r in records],
        },
    )
    return len(rows)


def create_missing_customers(session: Session, tenant_id: int, customer_ids: set[str]) -> None:
    """Stub customers for ids seen for the first time (a later statement sees them)."""
    session.execute(
        sql(
            "INSERT INTO customer (tenant_id, customer_id) "
            "SELECT :t, u FROM unnest(CAST(:ids AS text[])) AS u "
            "ON CONFLICT (tenant_id, customer_id) DO NOTHING"
        ),
        {"t": tenant_id, "ids": sorted(customer_ids)},
    )


def insert_events(
    session: Session, tenant_id: int, records: Sequence[EventIn]
) -> list[tuple[str, int]]:
    """Insert new events of existing customers; (event id, customer pk) of each one inserted.

    The customer pk is looked up in the statement itself (one round trip less); a missing
    customer fails it on the NOT NULL column rather than dropping the event.
    """
    rows = _rows(
        session,
        """
        INSERT INTO event (tenant_id, event_id, customer_pk, type, occurred_at, channel, properties)
        SELECT :t, u.event_id,
               (SELECT c.id FROM customer c WHERE c.tenant_id = :t AND c.customer_id = u.cid),
               u.type, u.occurred_at, u.channel, CAST(u.properties AS jsonb)
        FROM unnest(CAST(:ids AS text[]), CAST(:cids AS text[]), CAST(:types AS text[]),
                    CAST(:occurred AS timestamptz[]), CAST(:channels AS text[]),
                    CAST(:properties AS text[]))
             AS u(event_id, cid, type, occurred_at, channel, properties)
        ON CONFLICT (tenant_id, event_id) DO NOTHING
        RETURNING event_id, customer_pk
        """,
        {
            "t": tenant_id,
            "ids": [r.event_id for r in records],
            "cids": [r.customer_id for r in records],
            "types": [r.type.value for r in records],
            "occurred": [r.occurred_at for r in records],
            "channels": [r.channel for r in records],
            "properties": [_json(r.properties) for r in records],
        },
    )
    return [(event_id, pk) for event_id, pk in rows]


def insert_orders(
    session: Session, tenant_id: int, records: Sequence[OrderIn], pks: dict[str, int]
) -> list[tuple[str, int]]:
    """Insert new orders with their lines; (order id, customer pk) of each one inserted."""
    rows = _rows(
        session,
        """
        INSERT INTO orders (tenant_id, order_id, customer_pk, placed_at, currency, total,
                            channel, discount_code)
        SELECT :t, u.* FROM unnest(CAST(:ids AS text[]), CAST(:pks AS bigint[]),
            CAST(:placed AS timestamptz[]), CAST(:currencies AS text[]),
            CAST(:totals AS numeric[]), CAST(:channels AS text[]), CAST(:codes AS text[]))
            AS u
        ON CONFLICT (tenant_id, order_id) DO NOTHING
        RETURNING id, order_id, customer_pk
        """,
        {
            "t": tenant_id,
            "ids": [r.order_id for r in records],
            "pks": [pks[r.customer_id] for r in records],
            "placed": [r.placed_at for r in records],
            "currencies": [r.currency for r in records],
            "totals": [round(r.total, 2) for r in records],
            "channels": [r.channel for r in records],
            "codes": [r.discount_code for r in records],
        },
    )
    by_id = {r.order_id: r for r in records}
    lines = [
        (order_pk, customer_pk, n, line)
        for order_pk, order_id, customer_pk in rows
        for n, line in enumerate(by_id[order_id].lines)
    ]
    session.execute(
        sql(
            "INSERT INTO order_line "
            "(order_pk, line_no, tenant_id, customer_pk, product_id, quantity, unit_price) "
            "SELECT u.o, u.n, :t, u.c, u.p, u.q, u.up FROM unnest(CAST(:o AS bigint[]), "
            "CAST(:n AS int[]), CAST(:c AS bigint[]), CAST(:p AS text[]), CAST(:q AS int[]), "
            "CAST(:up AS numeric[])) AS u(o, n, c, p, q, up)"
        ),
        {
            "t": tenant_id,
            "o": [o for o, _, _, _ in lines],
            "n": [n for _, _, n, _ in lines],
            "c": [c for _, c, _, _ in lines],
            "p": [line.product_id for _, _, _, line in lines],
            "q": [line.quantity for _, _, _, line in lines],
            "up": [round(line.unit_price, 2) for _, _, _, line in lines],
        },
    )
    return [(order_id, customer_pk) for _, order_id, customer_pk in rows]


def insert_reviews(
    session: Session, tenant_id: int, records: Sequence[ReviewIn], pks: dict[str, int]
) -> list[tuple[int, str, int]]:
    """Insert new reviews; (review pk, review id, customer pk) of each one inserted."""
    rows = _rows(
        session,
        """
        INSERT INTO review (tenant_id, review_id, customer_pk, product_id, rating, text,
                            language, created_at)
        SELECT :t, u.* FROM unnest(CAST(:ids AS text[]), CAST(:pks AS bigint[]),
            CAST(:products AS text[]), CAST(:ratings AS smallint[]), CAST(:texts AS text[]),
            CAST(:languages AS text[]), CAST(:created AS timestamptz[])) AS u
        ON CONFLICT (tenant_id, review_id) DO NOTHING
        RETURNING id, review_id, customer_pk
        """,
        {
            "t": tenant_id,
            "ids": [r.review_id for r in records],
            "pks": [pks[r.customer_id] for r in records],
            "products": [r.product_id for r in records],
            "ratings": [r.rating for r in records],
            "texts": [r.text for r in records],
            "languages": [r.language for r in records],
            "created": [r.created_at for r in records],
        },
    )
    return [(pk, review_id, customer_pk) for pk, review_id, customer_pk in rows]


def insert_transcripts(
    session: Session, tenant_id: int, records: Sequence[TranscriptIn], pks: dict[str, int]
) -> list[tuple[int, str, int]]:
    """Insert new transcripts with their turns; (pk, transcript id, customer pk) of each."""
    rows = _rows(
        session,
        """
        INSERT INTO transcript (tenant_id, transcript_id, customer_pk, channel, started_at)
        SELECT :t, u.* FROM unnest(CAST(:ids AS text[]), CAST(:pks AS bigint[]),
            CAST(:channels AS text[]), CAST(:started AS timestamptz[])) AS u
        ON CONFLICT (tenant_id, transcript_id) DO NOTHING
        RETURNING id, transcript_id, customer_pk
        """,
        {
            "t": tenant_id,
            "ids": [r.transcript_id for r in records],
            "pks": [pks[r.customer_id] for r in records],
            "channels": [r.channel for r in records],
            "started": [r.started_at for r in records],
        },
    )
    by_id = {r.transcript_id: r for r in records}
    turns = [(pk, n, turn) for pk, tid, _ in rows for n, turn in enumerate(by_id[tid].turns)]
    session.execute(
        sql(
            "INSERT INTO transcript_turn (transcript_pk, turn_no, tenant_id, speaker, text, at) "
            "SELECT u.tp, u.n, :t, u.s, u.x, u.a FROM unnest(CAST(:tp AS bigint[]), "
            "CAST(:n AS int[]), CAST(:s AS text[]), CAST(:x AS text[]), "
            "CAST(:a AS timestamptz[])) AS u(tp, n, s, x, a)"
        ),
        {
            "t": tenant_id,
            "tp": [pk for pk, _, _ in turns],
            "n": [n for _, n, _ in turns],
            "s": [turn.speaker for _, _, turn in turns],
            "x": [turn.text for _, _, turn in turns],
            "a": [turn.at for _, _, turn in turns],
        },
    )
    return [(pk, tid, customer_pk) for pk, tid, customer_pk in rows]
