"""Storing a validated batch: suppression, de-duplication, and the outbox work it causes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sqlmodel import Session

from services.ingest.imports.staging import merge_events
from services.ingest.records import repository as repo
from services.ingest.records.schemas import (
    CustomerIn,
    EventIn,
    OrderIn,
    ProductIn,
    Record,
    RecordKind,
    ReviewIn,
    TranscriptIn,
)
from shared.contracts import (
    NLP_ANALYZE_REVIEWS,
    NLP_ANALYZE_TRANSCRIPTS,
    PERSONALIZE_REFRESH_CUSTOMERS,
    SEGMENT_REFRESH_CUSTOMERS,
)
from shared.erasure import subject_hash
from shared.outbox import enqueue, enqueue_customers
from shared.pii import keyed_hash, normalise_email, normalise_phone

R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class StoreOutcome:
    accepted: int
    duplicates: int
    suppressed: int


@dataclass(frozen=True)
class StoreContext:
    session: Session
    tenant_id: int
    secret: str


def _customer_id(record: Record) -> str | None:
    return getattr(record, "customer_id", None)


def drop_suppressed(ctx: StoreContext, records: Sequence[R]) -> list[R]:
    """Records of erased customers are counted but never stored."""
    hashes = {cid: subject_hash(ctx.secret, cid) for r in records if (cid := _customer_id(r))}
    if not hashes:
        return list(records)
    suppressed = set(
        ctx.session.execute(
            repo.sql(
                "SELECT subject_hash FROM suppression "
                "WHERE tenant_id = :t AND subject_hash = ANY(:h)"
            ),
            {"t": ctx.tenant_id, "h": sorted(set(hashes.values()))},
        ).scalars()
    )
    if not suppressed:
        return list(records)
    return [r for r in records if hashes.get(_customer_id(r) or "") not in suppressed]


def _last_per_key(records: Sequence[R], key: Callable[[R], str]) -> list[R]:
    # An upsert may not touch one row twice in one statement: the last version wins.
    latest = {key(r): r for r in records}
    return [latest[k] for k in sorted(latest)]


def _first_per_key(records: Sequence[R], key: Callable[[R], str]) -> list[R]:
    first: dict[str, R] = {}
    for r in records:
        first.setdefault(key(r), r)
    return [first[k] for k in sorted(first)]


def _refresh_customers(ctx: StoreContext, customer_pks: Sequence[int]) -> None:
    enqueue_customers(
        ctx.session,
        tenant_id=ctx.tenant_id,
        task_name=SEGMENT_REFRESH_CUSTOMERS,
        customer_pks=customer_pks,
    )


def _store_customers(ctx: StoreContext, records: Sequence[CustomerIn]) -> int:
    records = _last_per_key(records, lambda r: r.customer_id)
    changed = repo.upsert_customers(ctx.session, ctx.tenant_id, records)
    pks = repo.ensure_customers(ctx.session, ctx.tenant_id, {r.customer_id for r in records})
    ordered_pks = [pks[r.customer_id] for r in records]
    contact_changed = repo.upsert_contacts(ctx.session, ctx.tenant_id, ordered_pks, records)
    if contact_changed:
        by_pk = dict(zip(ordered_pks, records, strict=True))
        links: list[tuple[int, str, str]] = []
        for pk in sorted(contact_changed):
            r = by_pk[pk]
            email = r.email and keyed_hash(ctx.secret, normalise_email(r.email), purpose="email")
            phone = r.phone and keyed_hash(ctx.secret, normalise_phone(r.phone), purpose="phone")
            links += [(pk, "email", email or ""), (pk, "phone", phone or "")]
        repo.replace_identity_links(ctx.session, ctx.tenant_id, links)
    changed |= contact_changed
    _refresh_customers(ctx, sorted(changed))
    # Consent lives on the customer record: the storefront's answers must follow it.
    enqueue_customers(
        ctx.session,
        tenant_id=ctx.tenant_id,
        task_name=PERSONALIZE_REFRESH_CUSTOMERS,
        customer_pks=sorted(changed),
    )
    return len(changed)


def _store_products(ctx: StoreContext, records: Sequence[ProductIn]) -> int:
    return repo.upsert_products(
        ctx.session, ctx.tenant_id, _last_per_key(records, lambda r: r.product_id)
    )


def _customer_pks(
    ctx: StoreContext, records: Sequence[EventIn | OrderIn | ReviewIn | TranscriptIn]
) -> dict[str, int]:
    return repo.ensure_customers(ctx.session, ctx.tenant_id, {r.customer_id for r in records})


# Kinds stored insert-if-absent: their stores return the ids of the records they inserted.
def _insert_events(ctx: StoreContext, records: Sequence[EventIn]) -> list[str]:
    records = _first_per_key(records, lambda r: r.event_id)
    repo.create_missing_customers(ctx.session, ctx.tenant_id, {r.customer_id for r in records})
    inserted = repo.insert_events(ctx.session, ctx.tenant_id, records)
    _refresh_customers(ctx, [pk for _, pk in inserted])
    return [event_id for event_id, _ in inserted]


def _insert_orders(ctx: StoreContext, records: Sequence[OrderIn]) -> list[str]:
    records = _first_per_key(records, lambda r: r.order_id)
    inserted = repo.insert_orders(ctx.session, ctx.tenant_id, records, _customer_pks(ctx, records))
    _refresh_customers(ctx, [pk for _, pk in inserted])
    return [order_id for order_id, _ in inserted]


def _store_texts(
    ctx: StoreContext, task_name: str, inserted: list[tuple[int, str, int]]
) -> list[str]:
    enqueue(
        ctx.session,
        tenant_id=ctx.tenant_id,
        task_name=task_name,
        subject_ids=[pk for pk, _, _ in inserted],
        customer_pks=[customer_pk for _, _, customer_pk in inserted],
    )
    return [record_id for _, record_id, _ in inserted]


def _insert_reviews(ctx: StoreContext, records: Sequence[ReviewIn]) -> list[str]:
    records = _first_per_key(records, lambda r: r.review_id)
    inserted = repo.insert_reviews(ctx.session, ctx.tenant_id, records, _customer_pks(ctx, records))
    return _store_texts(ctx, NLP_ANALYZE_REVIEWS, inserted)


def _insert_transcripts(ctx: StoreContext, records: Sequence[TranscriptIn]) -> list[str]:
    records = _first_per_key(records, lambda r: r.transcript_id)
    pks = _customer_pks(ctx, records)
    inserted = repo.insert_transcripts(ctx.session, ctx.tenant_id, records, pks)
    return _store_texts(ctx, NLP_ANALYZE_TRANSCRIPTS, inserted)


_INSERTS: dict[RecordKind, Callable[[StoreContext, Sequence[Record]], list[str]]] = {
    RecordKind.ORDERS: _insert_orders,  # type: ignore[dict-item]
    RecordKind.EVENTS: _insert_events,  # type: ignore[dict-item]
    RecordKind.REVIEWS: _insert_reviews,  # type: ignore[dict-item]
    RecordKind.TRANSCRIPTS: _insert_transcripts,  # type: ignore[dict-item]
}
RECORD_ID_FIELDS = {
    RecordKind.ORDERS: "order_id",
    RecordKind.EVENTS: "event_id",
    RecordKind.REVIEWS: "review_id",
    RecordKind.TRANSCRIPTS: "transcript_id",
}
"""The kinds whose outcome can be told per record (see ``store_each``), by their id field."""


def _counting(
    insert: Callable[[StoreContext, Sequence[Record]], list[str]],
) -> Callable[[StoreContext, Sequence[Record]], int]:
    return lambda ctx, records: len(insert(ctx, records))


_STORES: dict[RecordKind, Callable[[StoreContext, Sequence[Record]], int]] = {
    RecordKind.CUSTOMERS: _store_customers,  # type: ignore[dict-item]
    RecordKind.PRODUCTS: _store_products,  # type: ignore[dict-item]
    **{kind: _counting(insert) for kind, insert in _INSERTS.items()},
}


def _bulk_events(ctx: StoreContext, records: Sequence[EventIn]) -> int:
    inserted = merge_events(ctx.session, ctx.tenant_id, records)
    _refresh_customers(ctx, inserted)
    return len(inserted)


# Bulk imports send events, the high-volume kind, through COPY and a staging table.
_BULK_STORES = {**_STORES, RecordKind.EVENTS: _bulk_events}


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    SUPPRESSED = "suppressed"


def store_each(
    session: Session, *, tenant_id: int, kind: RecordKind, records: Sequence[Record], secret: str
) -> list[Outcome]:
    """Store records of a kind in ``RECORD_ID_FIELDS``; what became of each, in order.

    Of several records with one id, only the first can be the one accepted. Flushes,
    never commits.
    """
    ctx = StoreContext(session=session, tenant_id=tenant_id, secret=secret)
    kept = {id(r) for r in drop_suppressed(ctx, records)}
    to_store = [r for r in records if id(r) in kept]
    inserted = set(_INSERTS[kind](ctx, to_store)) if to_store else set()
    field = RECORD_ID_FIELDS[kind]
    outcomes: list[Outcome] = []
    for record in records:
        record_id = getattr(record, field)
        if id(record) not in kept:
            outcomes.append(Outcome.SUPPRESSED)
        elif record_id in inserted:
            inserted.discard(record_id)
            outcomes.append(Outcome.ACCEPTED)
        else:
            outcomes.append(Outcome.DUPLICATE)
    return outcomes


def store_records(
    session: Session,
    *,
    tenant_id: int,
    kind: RecordKind,
    records: Sequence[Record],
    secret: str,
    bulk: bool = False,
) -> StoreOutcome:
    """Store valid records of one kind; flushes, never commits (the caller's boundary does)."""
    ctx = StoreContext(session=session, tenant_id=tenant_id, secret=secret)
    kept = drop_suppressed(ctx, records)
    store = (_BULK_STORES if bulk else _STORES)[kind]
    accepted = store(ctx, kept) if kept else 0  # type: ignore[arg-type]
    suppressed = len(records) - len(kept)
    return StoreOutcome(accepted=accepted, duplicates=len(kept) - accepted, suppressed=suppressed)
