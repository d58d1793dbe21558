"""Column helpers and the metadata naming convention shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, MetaData, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# Deterministic constraint names keep Alembic diffs and downgrades stable.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


def id_field() -> Any:
    return Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))


def opaque_id_field(table: str) -> Any:
    """The primary key of a table whose ids tenants see: a keyed permutation of the
    table's sequence (``opaque_id()``, made by the opaque-ids migration), so an id says
    nothing about how many rows other tenants made. Postgres computes it on every insert,
    ORM or plain SQL; the ORM reads it back with RETURNING."""
    default = text(f"opaque_id(nextval('{table}_id_seq'), '{table}')")
    return Field(
        default=None,
        sa_column=Column(BigInteger, primary_key=True, autoincrement=False, server_default=default),
    )


def tenant_field() -> Any:
    return Field(
        sa_column=Column(BigInteger, ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False)
    )


def customer_fk_field(*, nullable: bool = False) -> Any:
    # Every row about a customer cascades from the customer row: erasure is one DELETE.
    return Field(
        default=None if nullable else ...,
        sa_column=Column(
            BigInteger,
            ForeignKey("customer.id", ondelete="CASCADE"),
            nullable=nullable,
            index=True,
        ),
    )


def timestamp_field(*, nullable: bool = False, server_now: bool = False) -> Any:
    return Field(
        default=None if (nullable or server_now) else ...,
        sa_column=Column(
            DateTime(timezone=True),
            nullable=nullable,
            server_default=func.now() if server_now else None,
        ),
    )


def clock_field() -> Any:
    """When the row was inserted, by the clock rather than the transaction's start (as
    ``now()`` would be): rows inserted by one transaction keep their order. It orders the
    lists whose ids are opaque (``opaque_id_field``)."""
    return Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()
        ),
    )


def jsonb_field(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSONB, nullable=nullable))


def counter_field() -> Any:
    """An integer counter starting at 0, also for rows inserted by plain SQL."""
    return Field(default=0, sa_column_kwargs={"server_default": "0"})
