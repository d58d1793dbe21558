"""personalize: offers, placements, policy runs, the decision log and feedback, experiments

Revision ID: 4f271ff3aaf9
Revises: bdbfa08c0fee
Create Date: 2026-12-06 05:15:25.756834
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "4f271ff3aaf9"
down_revision: str | None = "bdbfa08c0fee"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("placement", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("arms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_experiment_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment")),
    )
    op.create_table(
        "offer",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("offer_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("discount_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("placements", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("segments", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_impressions_per_customer_per_day", sa.Integer(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name=op.f("fk_offer_tenant_id_tenant"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer")),
        sa.UniqueConstraint("tenant_id", "offer_id", name=op.f("uq_offer_tenant_id_offer_id")),
    )
    op.create_index(
        "ix_offer_discount_code",
        "offer",
        ["tenant_id", "discount_code"],
        unique=False,
        postgresql_where=sa.text("discount_code IS NOT NULL"),
    )
    op.create_table(
        "placement",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("strategy", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("algorithm", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("holdout_share", sa.Float(), nullable=False),
        sa.Column("default_offer_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_placement_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_placement_tenant_id_name")),
    )
    op.create_table(
        "policy_run",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("placement", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("algorithm", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("library_versions", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("progress", sa.Float(), server_default="0", nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_policy_run_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_run")),
        sa.UniqueConstraint(
            "tenant_id",
            "placement",
            "version",
            name=op.f("uq_policy_run_tenant_id_placement_version"),
        ),
    )
    op.create_index(
        "uq_policy_run_active",
        "policy_run",
        ["tenant_id", "placement"],
        unique=True,
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "decision",
        sa.Column("decision_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_pk", sa.BigInteger(), nullable=True),
        sa.Column("subject_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("placement", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("segment_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("strategy", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("offers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("eligible", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("arm", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("personalised", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "logged_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customer.id"],
            name=op.f("fk_decision_customer_pk_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_decision_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_decision")),
    )
    op.create_index(op.f("ix_decision_customer_pk"), "decision", ["customer_pk"], unique=False)
    op.create_index("ix_decision_subject", "decision", ["tenant_id", "subject_hash"], unique=False)
    op.create_index(
        "ix_decision_tenant_placement_created",
        "decision",
        ["tenant_id", "placement", "created_at"],
        unique=False,
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("decision_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("subject_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("customer_pk", sa.BigInteger(), nullable=True),
        sa.Column("offer_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customer.id"],
            name=op.f("fk_feedback_customer_pk_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_feedback_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("tenant_id", "event_id", name=op.f("uq_feedback_tenant_id_event_id")),
    )
    op.create_index(op.f("ix_feedback_customer_pk"), "feedback", ["customer_pk"], unique=False)
    op.create_index(op.f("ix_feedback_decision_id"), "feedback", ["decision_id"], unique=False)
    op.create_index(
        "ix_feedback_unapplied",
        "feedback",
        ["tenant_id", "id"],
        unique=False,
        postgresql_where=sa.text("applied_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_feedback_unapplied",
        table_name="feedback",
        postgresql_where=sa.text("applied_at IS NULL"),
    )
    op.drop_index(op.f("ix_feedback_decision_id"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_customer_pk"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_decision_tenant_placement_created", table_name="decision")
    op.drop_index("ix_decision_subject", table_name="decision")
    op.drop_index(op.f("ix_decision_customer_pk"), table_name="decision")
    op.drop_table("decision")
    op.drop_index(
        "uq_policy_run_active", table_name="policy_run", postgresql_where=sa.text("active")
    )
    op.drop_table("policy_run")
    op.drop_table("placement")
    op.drop_index(
        "ix_offer_discount_code",
        table_name="offer",
        postgresql_where=sa.text("discount_code IS NOT NULL"),
    )
    op.drop_table("offer")
    op.drop_table("experiment")
