"""Products, orders and behavioural events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Numeric, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.models.base import (
    id_field,
    jsonb_field,
    tenant_field,
    timestamp_field,
)


def _money() -> Any:
    return Field(sa_column=Column(Numeric(14, 2), nullable=False))


class Product(SQLModel, table=True):
    __tablename__ = "product"
    __table_args__ = (UniqueConstraint("tenant_id", "product_id"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    product_id: str = Field(max_length=128)
    name: str = Field(max_length=512)
    category: str = Field(max_length=128)
    price: Decimal = _money()
    created_at: datetime | None = timestamp_field(server_now=True)
    updated_at: datetime | None = timestamp_field(server_now=True)


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id"),
        Index("ix_orders_customer_pk_placed_at", "customer_pk", "placed_at"),
    )

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    order_id: str = Field(max_length=128)
    customer_pk: int = Field(
        sa_column=Column(BigInteger, ForeignKey("customer.id", ondelete="CASCADE"), nullable=False)
    )
    placed_at: datetime = timestamp_field()
    currency: str = Field(max_length=3)
    total: Decimal = _money()
    channel: str | None = Field(default=None, max_length=32)
    discount_code: str | None = Field(default=None, max_length=64)
    received_at: datetime | None = timestamp_field(server_now=True)


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_line"

    order_pk: int = Field(
        sa_column=Column(BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    )
    line_no: int = Field(primary_key=True)
    tenant_id: int = tenant_field()
    # The order's customer, copied so that per-customer features read lines without a
    # join to every order (an order's customer never changes; lines go with the order).
    customer_pk: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    product_id: str = Field(max_length=128)
    quantity: int
    unit_price: Decimal = _money()


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        Index("ix_event_customer_pk_occurred_at", "customer_pk", "occurred_at"),
    )

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    event_id: str = Field(max_length=128)
    customer_pk: int = Field(
        sa_column=Column(BigInteger, ForeignKey("customer.id", ondelete="CASCADE"), nullable=False)
    )
    type: str = Field(max_length=32)
    occurred_at: datetime = timestamp_field()
    channel: str | None = Field(default=None, max_length=32)
    properties: dict[str, Any] | None = jsonb_field()
    received_at: datetime | None = timestamp_field(server_now=True)
