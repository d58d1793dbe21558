"""Column helpers and the metadata naming convention shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, MetaData, func
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


def jsonb_field(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSONB, nullable=nullable))


def counter_field() -> Any:
    """An integer counter starting at 0, also for rows inserted by plain SQL."""
    return Field(default=0, sa_column_kwargs={"server_default": "0"})
