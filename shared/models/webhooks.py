"""Webhooks: who wants to hear about membership changes of which segments, and what was
sent to them (a delivery log, with the changes each delivery carries)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import AutoString, Field, SQLModel

from shared.models.base import (
    clock_field,
    customer_fk_field,
    id_field,
    opaque_id_field,
    tenant_field,
    timestamp_field,
)


class WebhookSubscription(SQLModel, table=True):
    """A URL told of entries into and exits from the listed segments (by stable key).

    ``secret`` signs every body (HMAC-SHA256); it is shown once, when the subscription is
    created, and kept here because the worker needs it to sign.
    """

    __tablename__ = "webhook_subscription"

    id: int | None = opaque_id_field("webhook_subscription")
    tenant_id: int = tenant_field()
    url: str = Field(max_length=2048)
    segment_keys: list[str] = Field(sa_column=Column(ARRAY(String(32)), nullable=False))
    secret: str = Field(max_length=128)
    description: str | None = Field(default=None, max_length=256)
    created_by: str | None = Field(default=None, max_length=128)
    created_at: datetime | None = clock_field()


class WebhookDelivery(SQLModel, table=True):
    """One POST of a batch of changes to a subscription's URL, retried until it is
    answered with a 2xx or dead-lettered (``status`` ``dead``) after the attempt limit."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index(
            "ix_webhook_delivery_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_delivery_subscription", "subscription_id", "created_at", "id"),
    )

    id: int | None = opaque_id_field("webhook_delivery")
    tenant_id: int = tenant_field()
    subscription_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("webhook_subscription.id", ondelete="CASCADE"), nullable=False
        )
    )
    # pending | delivered | dead; stored as text, written only as a DeliveryStatus.
    status: str = Field(sa_column=Column(AutoString(16), nullable=False))
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_attempt_at: datetime | None = timestamp_field(server_now=True)
    last_attempt_at: datetime | None = timestamp_field(nullable=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=512)
    delivered_at: datetime | None = timestamp_field(nullable=True)
    created_at: datetime | None = clock_field()


class WebhookDeliveryItem(SQLModel, table=True):
    """One membership change carried by a delivery. The body is built from these rows at
    each attempt, so a customer erased meanwhile (the row cascades) is no longer sent."""

    __tablename__ = "webhook_delivery_item"
    __table_args__ = (UniqueConstraint("subscription_id", "history_id"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    delivery_id: int = Field(
        sa_column=Column(
            BigInteger,
            ForeignKey("webhook_delivery.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    subscription_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    history_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    customer_pk: int = customer_fk_field()
    from_key: str | None = Field(default=None, max_length=32)
    to_key: str | None = Field(default=None, max_length=32)
    changed_at: datetime = timestamp_field()
