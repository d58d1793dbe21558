"""Customers, their restricted contact details and hashed identity links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.models.base import (
    customer_fk_field,
    id_field,
    jsonb_field,
    tenant_field,
    timestamp_field,
)


class Customer(SQLModel, table=True):
    """A customer as the caller knows them (``customer_id``), without contact details.

    Rows are created by a customer record or, as a stub, by the first event, order,
    review or transcript that names the id.
    """

    __tablename__ = "customer"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    customer_id: str = Field(max_length=128)
    signup_at: datetime | None = timestamp_field(nullable=True)
    attributes: dict[str, Any] | None = jsonb_field()
    consent: dict[str, bool] | None = jsonb_field()
    created_at: datetime | None = timestamp_field(server_now=True)
    updated_at: datetime | None = timestamp_field(server_now=True)


class CustomerContact(SQLModel, table=True):
    """The one restricted column set that holds raw emails and phones."""

    __tablename__ = "customer_contact"

    customer_pk: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
        )
    )
    tenant_id: int = tenant_field()
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)


class IdentityLink(SQLModel, table=True):
    """Keyed hash of an email or phone → customer, for matching without the raw value."""

    __tablename__ = "identity_link"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "value_hash", "customer_pk"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    customer_pk: int = customer_fk_field()
    kind: str = Field(max_length=16)
    value_hash: str = Field(max_length=64)
