"""opaque ids: the ids tenants see no longer count every tenant's rows

Revision ID: ce6fecfb55c0
Revises: c3d8e1f0a7b2
Create Date: 2026-12-10 09:00:00

Run, erasure, experiment, anomaly and webhook ids came straight from per-table sequences
that every tenant shares: two runs of a tenant with ids 100 and 250 told it that 149 rows
had been made for others in between. New rows of those tables now take
``opaque_id(nextval(<sequence>), <table>)``: a keyed permutation (a 4-round Feistel
network over two 24-bit halves, its round function SHA-256 of a per-database secret) of
the sequence's value, plus 2^48. A permutation keeps ids unique; the values lie in
[2^48, 2^49): positive, exact in a JSON number, and above every id made before (existing
rows keep theirs). The secret is made here, once per database, and never leaves it;
``opaque_id_inverse`` turns an id back into the sequence value, which the list cursors
that are customer pks (members, prediction scores) use.

``decision.experiment_id`` becomes 64-bit, as experiment ids now pass 2^31; that rewrites
the decision table under an exclusive lock, so run this upgrade in a quiet hour. Lists
that paged by id page by (creation time, id), with indexes to match; the creation times
of these tables come from ``clock_timestamp()`` instead of ``now()``, so rows inserted in
one transaction keep their order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ce6fecfb55c0"
down_revision: str | None = "c3d8e1f0a7b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables whose ids a tenant sees (in a URL, a response, a cursor or a webhook body),
# with the column that now orders them in time.
OPAQUE_TABLES = {
    "segmentation_run": "created_at",
    "prediction_run": "created_at",
    "anomaly_run": "created_at",
    "anomaly_flag": "detected_at",
    "segment_alert": "detected_at",
    "recommender_run": "created_at",
    "erasure_request": "requested_at",
    "experiment": "started_at",
    "webhook_subscription": "created_at",
    "webhook_delivery": "created_at",
}

_FUNCTIONS = """
CREATE TABLE opaque_id_key (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret text NOT NULL
);
INSERT INTO opaque_id_key (secret) VALUES (gen_random_uuid()::text || gen_random_uuid()::text);

-- A permutation of [0, 2^48) per domain, and its inverse: a Feistel network whose round
-- function is the first 24 bits of SHA-256(secret/domain/round/half). The rounds are
-- written inline: a SQL function called from PL/pgSQL is planned again on every call.
CREATE FUNCTION opaque_id_permute(n bigint, domain text, inverse boolean)
RETURNS bigint LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    k text;
    l bigint := n >> 24;
    r bigint := n & 16777215;
    t bigint;
BEGIN
    SELECT secret || '/' || domain || '/' INTO STRICT k FROM opaque_id_key;
    IF NOT inverse THEN
        FOR i IN 0..3 LOOP
            t := r;
            r := l # ('x' || left(encode(sha256(convert_to(k || i || '/' || r, 'UTF8')), 'hex'),
                                 6))::bit(24)::bigint;
            l := t;
        END LOOP;
    ELSE
        FOR i IN REVERSE 3..0 LOOP
            t := l;
            l := r # ('x' || left(encode(sha256(convert_to(k || i || '/' || l, 'UTF8')), 'hex'),
                                 6))::bit(24)::bigint;
            r := t;
        END LOOP;
    END IF;
    RETURN (l << 24) | r;
END
$$;

-- The id shown for the n-th row of a domain (a table): in [2^48, 2^49).
CREATE FUNCTION opaque_id(n bigint, domain text)
RETURNS bigint LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF n < 0 OR n >= 281474976710656 THEN
        RAISE EXCEPTION 'opaque_id: % is outside [0, 2^48)', n;
    END IF;
    RETURN 281474976710656 + opaque_id_permute(n, domain, false);
END
$$;

-- n back from opaque_id(n, domain); NULL for a value opaque_id never gives.
CREATE FUNCTION opaque_id_inverse(id bigint, domain text)
RETURNS bigint LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN id >= 281474976710656 AND id < 562949953421312
                THEN opaque_id_permute(id - 281474976710656, domain, true) END
$$;
"""

# (index, table, old columns, new columns): the lists that page newest first.
_INDEXES = (
    (
        "ix_anomaly_flag_tenant_detected",
        "anomaly_flag",
        ["tenant_id", "detected_at"],
        ["tenant_id", "detected_at", "id"],
    ),
    (
        "ix_prediction_run_tenant",
        "prediction_run",
        ["tenant_id", "id"],
        ["tenant_id", "created_at", "id"],
    ),
    (
        "ix_webhook_delivery_subscription",
        "webhook_delivery",
        ["subscription_id", "id"],
        ["subscription_id", "created_at", "id"],
    ),
)


def upgrade() -> None:
    op.execute(_FUNCTIONS)
    for table, time_column in OPAQUE_TABLES.items():
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN id "
            f"SET DEFAULT opaque_id(nextval('{table}_id_seq'), '{table}'), "
            f"ALTER COLUMN {time_column} SET DEFAULT clock_timestamp()"
        )
    op.alter_column("decision", "experiment_id", type_=sa.BigInteger(), existing_type=sa.Integer())
    for name, table, _old, new in _INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, new)
    op.create_index(
        "ix_segmentation_run_tenant_created", "segmentation_run", ["tenant_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_segmentation_run_tenant_created", table_name="segmentation_run")
    for name, table, old, _new in _INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, old)
    op.alter_column("decision", "experiment_id", type_=sa.Integer(), existing_type=sa.BigInteger())
    for table, time_column in OPAQUE_TABLES.items():
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq'), "
            f"ALTER COLUMN {time_column} SET DEFAULT now()"
        )
    op.execute(
        "DROP FUNCTION opaque_id_inverse(bigint, text); DROP FUNCTION opaque_id(bigint, text);"
        " DROP FUNCTION opaque_id_permute(bigint, text, boolean); DROP TABLE opaque_id_key;"
    )
