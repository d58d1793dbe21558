"""The transactional outbox, dead letters and erasure requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Text, text
from sqlmodel import Field, SQLModel

from shared.models.base import (
    clock_field,
    counter_field,
    customer_fk_field,
    id_field,
    jsonb_field,
    opaque_id_field,
    tenant_field,
    timestamp_field,
)


class Outbox(SQLModel, table=True):
    """Work committed with the data it is about; the relay publishes it to Celery.

    One row per subject (a review, a transcript, a customer). Rows for the same task and
    subject coalesce while unpublished, so a burst of activity becomes one refresh.
    A row is deleted when its task completes; until then the relay re-drives it.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "uq_outbox_pending_task_subject",
            "task_name",
            "subject_id",
            unique=True,
            postgresql_where=text("published_at IS NULL"),
        ),
        Index("ix_outbox_pending", "available_at", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_published_at", "published_at"),
    )

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    task_name: str = Field(max_length=64)
    subject_id: int = Field(sa_type=BigInteger)  # a pk of any table: 64-bit
    customer_pk: int | None = customer_fk_field(nullable=True)
    created_at: datetime | None = timestamp_field(server_now=True)
    available_at: datetime | None = timestamp_field(server_now=True)
    published_at: datetime | None = timestamp_field(nullable=True)
    publish_count: int = counter_field()
    attempts: int = counter_field()
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class DeadLetter(SQLModel, table=True):
    """Work given up on after too many attempts, with the reason."""

    __tablename__ = "dead_letter"

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    task_name: str = Field(max_length=64)
    subject_id: int = Field(sa_type=BigInteger)  # a pk of any table: 64-bit
    customer_pk: int | None = customer_fk_field(nullable=True)
    attempts: int
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = timestamp_field(server_now=True)


class ErasureRequest(SQLModel, table=True):
    """A GDPR erasure, with its status per store. Holds only a keyed hash of the subject.

    ``stores`` maps each expected store to its report (see ``shared.erasure.StoreReport``).
    ``subject_pk`` is the customer's internal id, not a foreign key: the customer row is
    gone with the first store, and the services that erase later still need to know whom.
    It is cleared once every store has reported.
    """

    __tablename__ = "erasure_request"

    id: int | None = opaque_id_field("erasure_request")
    tenant_id: int = tenant_field()
    subject_hash: str = Field(max_length=64, index=True)
    subject_pk: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    status: str = Field(max_length=16)
    stores: dict[str, Any] | None = jsonb_field()
    requested_at: datetime | None = clock_field()
    completed_at: datetime | None = timestamp_field(nullable=True)
