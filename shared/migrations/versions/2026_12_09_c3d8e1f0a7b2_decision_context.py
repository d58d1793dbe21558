"""decision context: the customer's numeric context and the algorithm that decided

Revision ID: c3d8e1f0a7b2
Revises: 27d576178a5a
Create Date: 2026-12-06 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c3d8e1f0a7b2"
down_revision: str | None = "27d576178a5a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("decision", sa.Column("context", postgresql.ARRAY(sa.Float()), nullable=True))
    op.add_column(
        "decision",
        sa.Column("algorithm", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("decision", "algorithm")
    op.drop_column("decision", "context")
