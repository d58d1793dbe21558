"""GDPR erasure: every store registers how a customer is erased from it.

The Postgres schema erases by cascade from the customer row (every table about a
customer has a cascading ``customer_pk``), so one registered store covers every table,
those added by later services included. Stores outside Postgres (caches) register too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, select

from shared.models import metadata
from shared.models.messaging import ErasureRequest
from shared.models.tenancy import AuditLog
from shared.pii import keyed_hash

EraseFn = Callable[[Session, int, int], dict[str, int]]


@dataclass(frozen=True)
class ErasureStore:
    name: str
    erase: EraseFn  # (session, tenant_id, customer_pk) -> rows erased per table


_STORES: dict[str, ErasureStore] = {}


def register_erasure_store(store: ErasureStore) -> None:
    _STORES[store.name] = store


def erasure_stores() -> list[ErasureStore]:
    return list(_STORES.values())


def _erase_postgres(session: Session, tenant_id: int, customer_pk: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in metadata.sorted_tables:
        if "customer_pk" in table.c and table.name != "customer_contact":
            n = session.execute(
                text(f"SELECT count(*) FROM {table.name} WHERE customer_pk = :pk"),
                {"pk": customer_pk},
            ).scalar_one()
            if n:
                counts[table.name] = int(n)
    deleted = session.execute(
        text("DELETE FROM customer WHERE id = :pk AND tenant_id = :tenant"),
        {"pk": customer_pk, "tenant": tenant_id},
    )
    counts["customer"] = int(deleted.rowcount)  # type: ignore[attr-defined]
    return counts


register_erasure_store(ErasureStore(name="postgres", erase=_erase_postgres))


def subject_hash(secret: str, customer_id: str) -> str:
    """The keyed hash that stands for a customer id in suppressions, audits and requests."""
    return keyed_hash(secret, customer_id, purpose="customer_id")


def erase_customer(
    session: Session, *, tenant_id: int, customer_id: str, secret: str, actor: str
) -> ErasureRequest:
    """Erase a customer from every registered store and suppress their id from now on.

    Runs in the caller's transaction: the suppression, the deletions and the request's
    record commit together, so an erasure is never half done. The customer id itself is
    not kept anywhere, only its keyed hash.
    """
    hashed = subject_hash(secret, customer_id)
    session.execute(
        text(
            "INSERT INTO suppression (tenant_id, subject_hash) VALUES (:t, :h) "
            "ON CONFLICT (tenant_id, subject_hash) DO NOTHING"
        ),
        {"t": tenant_id, "h": hashed},
    )
    customer_pk = session.execute(
        text("SELECT id FROM customer WHERE tenant_id = :t AND customer_id = :c"),
        {"t": tenant_id, "c": customer_id},
    ).scalar_one_or_none()
    stores: dict[str, Any] = {}
    for store in erasure_stores():
        rows = store.erase(session, tenant_id, customer_pk) if customer_pk is not None else {}
        stores[store.name] = {"status": "erased", "rows": rows}
    request = ErasureRequest(
        tenant_id=tenant_id,
        subject_hash=hashed,
        status="completed",
        stores=stores,
        completed_at=session.exec(select(func.now())).one(),
    )
    session.add(request)
    session.add(
        AuditLog(
            tenant_id=tenant_id,
            actor=actor,
            action="customer.erase",
            target=hashed,
            detail={"found": customer_pk is not None},
        )
    )
    session.flush()
    return request
