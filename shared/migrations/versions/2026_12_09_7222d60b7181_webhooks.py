"""webhooks: subscriptions to segment membership changes, deliveries and their changes

Revision ID: 7222d60b7181
Revises: c4a7e2d19b83
Create Date: 2026-12-06 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7222d60b7181"
down_revision: str | None = "c4a7e2d19b83"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def _tenant(table: str) -> sa.Column[int]:
    return sa.Column(
        "tenant_id",
        sa.BigInteger(),
        sa.ForeignKey("tenant.id", ondelete="CASCADE", name=f"fk_{table}_tenant_id_tenant"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        _tenant("webhook_subscription"),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("segment_keys", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscription")),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        _tenant("webhook_delivery"),
        sa.Column(
            "subscription_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "webhook_subscription.id",
                ondelete="CASCADE",
                name="fk_webhook_delivery_subscription_id_webhook_subscription",
            ),
            nullable=False,
        ),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    op.create_index(
        "ix_webhook_delivery_due",
        "webhook_delivery",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_delivery_subscription", "webhook_delivery", ["subscription_id", "id"]
    )
    op.create_table(
        "webhook_delivery_item",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        _tenant("webhook_delivery_item"),
        sa.Column(
            "delivery_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "webhook_delivery.id",
                ondelete="CASCADE",
                name="fk_webhook_delivery_item_delivery_id_webhook_delivery",
            ),
            nullable=False,
        ),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("history_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "customer_pk",
            sa.BigInteger(),
            sa.ForeignKey(
                "customer.id",
                ondelete="CASCADE",
                name="fk_webhook_delivery_item_customer_pk_customer",
            ),
            nullable=False,
        ),
        sa.Column("from_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("to_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery_item")),
        sa.UniqueConstraint(
            "subscription_id", "history_id", name=op.f("uq_webhook_delivery_item_subscription_id")
        ),
    )
    op.create_index(
        op.f("ix_webhook_delivery_item_delivery_id"), "webhook_delivery_item", ["delivery_id"]
    )
    op.create_index(
        op.f("ix_webhook_delivery_item_customer_pk"), "webhook_delivery_item", ["customer_pk"]
    )


def downgrade() -> None:
    op.drop_table("webhook_delivery_item")
    op.drop_table("webhook_delivery")
    op.drop_table("webhook_subscription")
