"""anomalies: detection runs, customer flags, segment alerts

Revision ID: 27d576178a5a
Revises: 7222d60b7181
Create Date: 2026-12-06 07:43:44.258408
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "27d576178a5a"
down_revision: str | None = "7222d60b7181"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('anomaly_run',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('data_window', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('metrics', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('library_versions', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('progress', sa.Float(), server_default='0', nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_anomaly_run_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_anomaly_run'))
    )
    op.create_index('ix_anomaly_run_tenant_created', 'anomaly_run', ['tenant_id', 'created_at'], unique=False)
    op.create_table('anomaly_flag',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.BigInteger(), nullable=False),
    sa.Column('customer_pk', sa.BigInteger(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('size', sa.Float(), nullable=False),
    sa.Column('observed', sa.Float(), nullable=True),
    sa.Column('expected', sa.Float(), nullable=True),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['customer_pk'], ['customer.id'], name=op.f('fk_anomaly_flag_customer_pk_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['anomaly_run.id'], name=op.f('fk_anomaly_flag_run_id_anomaly_run'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_anomaly_flag_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_anomaly_flag')),
    sa.UniqueConstraint('run_id', 'customer_pk', 'kind', name=op.f('uq_anomaly_flag_run_id_customer_pk_kind'))
    )
    op.create_index(op.f('ix_anomaly_flag_customer_pk'), 'anomaly_flag', ['customer_pk'], unique=False)
    op.create_index('ix_anomaly_flag_tenant_detected', 'anomaly_flag', ['tenant_id', 'detected_at'], unique=False)
    op.create_table('segment_alert',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.BigInteger(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('segmentation_run_id', sa.BigInteger(), nullable=False),
    sa.Column('segment_key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('observed', sa.Float(), nullable=False),
    sa.Column('expected', sa.Float(), nullable=False),
    sa.Column('lower', sa.Float(), nullable=False),
    sa.Column('upper', sa.Float(), nullable=False),
    sa.Column('size', sa.Float(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['anomaly_run.id'], name=op.f('fk_segment_alert_run_id_anomaly_run'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_segment_alert_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segment_alert')),
    sa.UniqueConstraint('run_id', 'segment_key', 'metric', name=op.f('uq_segment_alert_run_id_segment_key_metric'))
    )
    op.create_index('ix_segment_alert_tenant_detected', 'segment_alert', ['tenant_id', 'detected_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_segment_alert_tenant_detected', table_name='segment_alert')
    op.drop_table('segment_alert')
    op.drop_index('ix_anomaly_flag_tenant_detected', table_name='anomaly_flag')
    op.drop_index(op.f('ix_anomaly_flag_customer_pk'), table_name='anomaly_flag')
    op.drop_table('anomaly_flag')
    op.drop_index('ix_anomaly_run_tenant_created', table_name='anomaly_run')
    op.drop_table('anomaly_run')
