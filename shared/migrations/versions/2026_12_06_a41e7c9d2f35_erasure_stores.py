"""erasure_request keeps whom it erases until every store has reported

Revision ID: a41e7c9d2f35
Revises: d3b8f2a41c07
Create Date: 2026-12-06 10:00:00

Erasure now fans out to each service's worker, and the Postgres store (the cascade from
the customer row) runs first: the workers that erase later find the customer's internal id
here. It is a plain column, not a foreign key (the customer row is already gone), and is
cleared when the request completes. Requests recorded before this change completed at once;
their per-store reports keep their shape.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a41e7c9d2f35"
down_revision: str | None = "d3b8f2a41c07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("erasure_request", sa.Column("subject_pk", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("erasure_request", "subject_pk")
