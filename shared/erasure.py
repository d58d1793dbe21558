"""GDPR erasure across services: one request, a report per store, complete when all reported.

``DELETE /v1/customers/{id}`` calls `erase_customer` in its transaction: the id's keyed
hash is suppressed from then on; the Postgres store is erased at once by cascade from the
customer row (every table about a customer has a cascading ``customer_pk``, so this one
store covers the tables of every service); and each service in `WORKER_STORES` gets a
``<service>.erase_customer`` task through the outbox, carrying the request's id only.
Each service's worker erases the stores it owns (`erasure_worker`), reports them on the
request, and the last one to report completes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Final

from celery import shared_task
from pydantic import BaseModel, Field
from sqlalchemy import func, text
from sqlmodel import Session, col, select

from shared.contracts import OutboxBatch, queue_for
from shared.models import metadata
from shared.models.messaging import ErasureRequest
from shared.models.tenancy import AuditLog
from shared.outbox import enqueue
from shared.pii import keyed_hash
from shared.reliable import ReliableRunner, Subject, WorkerEngine


class ErasureStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"


class StoreStatus(StrEnum):
    PENDING = "pending"
    ERASED = "erased"


class StoreReport(BaseModel):
    """One store's part of an erasure, as recorded on the request and shown by the API."""

    service: str | None = None  # None on requests recorded before erasure fanned out
    status: StoreStatus
    rows: dict[str, int] = Field(
        default_factory=dict,
        description="What was erased: rows per table, Redis keys, artifact entries",
    )
    reported_at: datetime | None = None


POSTGRES_STORE: Final = "postgres"
# The stores each service's worker erases, declared here so that the process recording a
# request knows what to wait for without importing any service. nlp has none of its own:
# its analyses are Postgres rows (the cascade) and its models are trained on public corpora.
WORKER_STORES: dict[str, tuple[str, ...]] = {
    "segment": ("segment-artifacts", "segment-webhooks"),
    "personalize": ("personalize-cache", "personalize-log"),
}


def erase_task_name(service: str) -> str:
    """The task each service's worker runs for a request: ``<service>.erase_customer``."""
    return f"{service}.erase_customer"


def declare_worker_stores(service: str, stores: Sequence[str]) -> None:
    """Expect ``stores`` from ``service``'s worker too (a new service, or a test's fake)."""
    queue_for(erase_task_name(service))  # an unroutable service would never report
    WORKER_STORES[service] = (*WORKER_STORES.get(service, ()), *stores)


@dataclass(frozen=True)
class ErasureSubject:
    erasure_id: int
    tenant_id: int
    customer_pk: int
    subject_hash: str  # the keyed hash of the customer's id (see ``subject_hash``)


# Erases one customer from one store in the worker's transaction; returns what it erased.
EraseFn = Callable[[Session, ErasureSubject], dict[str, int]]


@dataclass(frozen=True)
class ErasureStore:
    name: str
    erase: EraseFn


def subject_hash(secret: str, customer_id: str) -> str:
    """The keyed hash that stands for a customer id in suppressions, audits and requests."""
    return keyed_hash(secret, customer_id, purpose="customer_id")


def _now(session: Session) -> datetime:
    return session.exec(select(func.now())).one()


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


def _customer_pk(session: Session, tenant_id: int, customer_id: str) -> int | None:
    pk = session.execute(
        text("SELECT id FROM customer WHERE tenant_id = :t AND customer_id = :c"),
        {"t": tenant_id, "c": customer_id},
    ).scalar_one_or_none()
    return None if pk is None else int(pk)


def _pending_pk(session: Session, tenant_id: int, hashed: str) -> int | None:
    """The customer an earlier, still pending request erased: its workers may not have
    run yet, so a repeated request asks them again about the same customer."""
    return session.exec(
        select(ErasureRequest.subject_pk)
        .where(
            ErasureRequest.tenant_id == tenant_id,
            ErasureRequest.subject_hash == hashed,
            ErasureRequest.subject_pk.is_not(None),  # type: ignore[union-attr]
        )
        .order_by(col(ErasureRequest.requested_at).desc(), col(ErasureRequest.id).desc())
    ).first()


def _expected_stores(postgres: StoreReport) -> dict[str, StoreReport]:
    stores = {POSTGRES_STORE: postgres}
    for service, names in WORKER_STORES.items():
        stores.update(
            {name: StoreReport(service=service, status=StoreStatus.PENDING) for name in names}
        )
    return stores


def _dump(stores: dict[str, StoreReport]) -> dict[str, object]:
    return {name: report.model_dump(mode="json") for name, report in stores.items()}


def erase_customer(
    session: Session, *, tenant_id: int, customer_id: str, secret: str, actor: str
) -> ErasureRequest:
    """Record an erasure, erase Postgres at once and ask every other store's service.

    Runs in the caller's transaction: the suppression, the deletions, the request and its
    tasks commit together, so an erasure is never half recorded. The customer id itself
    is kept nowhere, only its keyed hash (and, until completion, the internal id).
    """
    hashed = subject_hash(secret, customer_id)
    session.execute(
        text(
            "INSERT INTO suppression (tenant_id, subject_hash) VALUES (:t, :h) "
            "ON CONFLICT (tenant_id, subject_hash) DO NOTHING"
        ),
        {"t": tenant_id, "h": hashed},
    )
    customer_pk = _customer_pk(session, tenant_id, customer_id)
    rows = _erase_postgres(session, tenant_id, customer_pk) if customer_pk is not None else {}
    subject_pk = customer_pk if customer_pk is not None else _pending_pk(session, tenant_id, hashed)
    now = _now(session)
    postgres = StoreReport(service="ingest", status=StoreStatus.ERASED, rows=rows, reported_at=now)
    stores = _expected_stores(postgres)
    request = ErasureRequest(
        tenant_id=tenant_id,
        subject_hash=hashed,
        subject_pk=subject_pk,
        status=ErasureStatus.PENDING,
        stores=_dump(stores),
    )
    _complete_if_done(request, stores, now)
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
    assert request.id is not None
    for service in WORKER_STORES:
        enqueue(
            session,
            tenant_id=tenant_id,
            task_name=erase_task_name(service),
            subject_ids=[request.id],  # the request's id only: never the customer's
        )
    return request


def _complete_if_done(
    request: ErasureRequest, stores: dict[str, StoreReport], now: datetime
) -> None:
    if all(report.status is StoreStatus.ERASED for report in stores.values()):
        request.status = ErasureStatus.COMPLETED
        request.completed_at = now
        request.subject_pk = None  # nothing is left that it could point to
    else:
        request.status = ErasureStatus.PENDING


def _erase_request(
    service: str, stores: Sequence[ErasureStore], session: Session, erasure_id: int
) -> None:
    # The row lock orders the services' reports on one request: the last to report sees
    # every other report committed, and completes the request.
    request = session.exec(
        select(ErasureRequest).where(ErasureRequest.id == erasure_id).with_for_update()
    ).first()
    if request is None:
        return
    reports = {n: StoreReport.model_validate(r) for n, r in (request.stores or {}).items()}
    now = _now(session)
    for store in stores:
        done = reports.get(store.name)
        if done is not None and done.status is StoreStatus.ERASED:
            continue  # a re-delivered task: already reported
        rows: dict[str, int] = {}
        if request.subject_pk is not None:
            subject = ErasureSubject(
                erasure_id, request.tenant_id, request.subject_pk, request.subject_hash
            )
            rows = store.erase(session, subject)
        reports[store.name] = StoreReport(
            service=service, status=StoreStatus.ERASED, rows=rows, reported_at=now
        )
    request.stores = _dump(reports)
    _complete_if_done(request, reports, now)
    session.add(request)
    session.flush()


def _erase_subjects(
    service: str, stores: Sequence[ErasureStore], session: Session, subjects: Sequence[Subject]
) -> None:
    for subject in subjects:
        _erase_request(service, stores, session, subject.subject_id)


def erasure_worker(
    service: str, stores: Sequence[ErasureStore], *, engine: WorkerEngine, max_attempts: int
) -> None:
    """Register ``<service>.erase_customer`` with this process's Celery app.

    A shared task, so a service's erasure module needs only to be imported by its worker.
    The stores must be exactly those declared for the service in `WORKER_STORES`: a store
    erased but not expected would be reported on no request, one expected but not erased
    would keep every request pending.
    """
    names = tuple(store.name for store in stores)
    if sorted(names) != sorted(WORKER_STORES.get(service, ())):
        raise ValueError(f"{service} erases {names}, declared {WORKER_STORES.get(service)}")
    handler = partial(_erase_subjects, service, tuple(stores))

    def task(*, outbox_ids: list[int]) -> None:
        batch = OutboxBatch(outbox_ids=outbox_ids)
        ReliableRunner(engine.get(), handler, max_attempts).run(batch.outbox_ids)

    shared_task(name=erase_task_name(service), acks_late=True, reject_on_worker_lost=True)(task)
