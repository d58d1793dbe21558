"""GDPR erasure: every store registers how a customer is erased from it.

The Postgres schema erases by cascade from the customer row (every table about a
customer has a cascading ``customer_pk``), so one registered store covers every table,
those added by later services included. Stores outside Postgres (caches) register too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from shared.models import metadata

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
