"""attribution cursor: how far personalize has read the orders for conversions

Revision ID: 7fb1494a3e21
Revises: 4f271ff3aaf9
Create Date: 2026-12-06 05:31:56.996813
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "7fb1494a3e21"
down_revision: str | None = "4f271ff3aaf9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attribution_cursor",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("last_order_pk", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_attribution_cursor")),
    )


def downgrade() -> None:
    op.drop_table("attribution_cursor")
