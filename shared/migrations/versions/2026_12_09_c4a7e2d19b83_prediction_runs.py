"""prediction runs: churn and purchase-propensity models and their per-customer scores

Revision ID: c4a7e2d19b83
Revises: c3d5e7f9a1b2
Create Date: 2026-12-06 07:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c4a7e2d19b83"
down_revision: str | None = "c3d5e7f9a1b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = True, now: bool = False) -> sa.Column[sa.DateTime]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.text("now()") if now else None,
    )


def upgrade() -> None:
    op.create_table(
        "prediction_run",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("feature_set", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        _timestamp("as_of"),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("data_window", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("artifact", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("library_versions", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("progress", sa.Float(), server_default="0", nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        _timestamp("created_at", nullable=False, now=True),
        _timestamp("started_at"),
        _timestamp("finished_at"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_prediction_run_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_run")),
    )
    op.create_index(
        "uq_prediction_run_active",
        "prediction_run",
        ["tenant_id", "model"],
        unique=True,
        postgresql_where=sa.text("active"),
    )
    op.create_index("ix_prediction_run_tenant", "prediction_run", ["tenant_id", "id"])
    op.create_table(
        "prediction_score",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_pk", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("expected_spend", sa.Float(), nullable=True),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["prediction_run.id"],
            name=op.f("fk_prediction_score_run_id_prediction_run"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customer.id"],
            name=op.f("fk_prediction_score_customer_pk_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_prediction_score_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "customer_pk", name=op.f("pk_prediction_score")),
    )
    op.create_index("ix_prediction_score_customer", "prediction_score", ["customer_pk"])


def downgrade() -> None:
    op.drop_index("ix_prediction_score_customer", table_name="prediction_score")
    op.drop_table("prediction_score")
    op.drop_index("ix_prediction_run_tenant", table_name="prediction_run")
    op.drop_index("uq_prediction_run_active", table_name="prediction_run")
    op.drop_table("prediction_run")
