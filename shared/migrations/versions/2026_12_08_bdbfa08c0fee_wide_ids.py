"""64-bit subject ids in outbox and dead_letter, and 32-bit unsigned seeds

Revision ID: bdbfa08c0fee
Revises: a41e7c9d2f35
Create Date: 2026-12-08 10:00:00

``outbox.subject_id`` and ``dead_letter.subject_id`` hold primary keys of other tables,
which are bigint: once those passed 2^31 an enqueue failed, and with it the transaction of
the records it was about. ``segmentation_run.seed`` is documented as 0..2^32-1, past what
a signed 32-bit integer holds. Widening rewrites the three tables under a brief exclusive
lock; they are small (outbox rows are deleted as their work completes). Going back fails,
as it should, if any value no longer fits.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bdbfa08c0fee"
down_revision: str | None = "a41e7c9d2f35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("outbox", "subject_id"), ("dead_letter", "subject_id"), ("segmentation_run", "seed"))


def upgrade() -> None:
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
