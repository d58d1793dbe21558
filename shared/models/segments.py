"""What the segment service computes: features, segmentation runs, memberships, scores."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import AutoString, Field, SQLModel

from shared.models.base import (
    clock_field,
    customer_fk_field,
    id_field,
    jsonb_field,
    opaque_id_field,
    tenant_field,
    timestamp_field,
)
from shared.runs import RunStatus


def _customer_pk_primary() -> Any:
    return Field(
        sa_column=Column(
            BigInteger, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
        )
    )


class CustomerFeatures(SQLModel, table=True):
    """One customer's feature vector under one feature-set version, as of a time.

    ``feature_values`` follows the order of the feature set's names (kept in code, and
    recorded with every run that uses them): an array loads into numpy far faster than
    a JSON object per customer.
    """

    __tablename__ = "customer_features"
    __table_args__ = (Index("ix_customer_features_tenant_set", "tenant_id", "feature_set"),)

    customer_pk: int = _customer_pk_primary()
    feature_set: str = Field(max_length=32, primary_key=True)
    tenant_id: int = tenant_field()
    feature_values: list[float] = Field(sa_column=Column(ARRAY(Float), nullable=False))
    as_of: datetime = timestamp_field()
    updated_at: datetime | None = timestamp_field(server_now=True)


class SegmentationRun(SQLModel, table=True):
    """One training of a segmentation: what went in, what came out, how good it is.

    ``artifact`` holds the fitted model as plain arrays and rules (no pickles): scaling,
    centroids or cluster parameters, the surrogate tree, the 2-D map sample.
    """

    __tablename__ = "segmentation_run"
    __table_args__ = (
        Index(
            "uq_segmentation_run_active",
            "tenant_id",
            unique=True,
            postgresql_where=text("active"),
        ),
        Index("ix_segmentation_run_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: int | None = opaque_id_field("segmentation_run")
    tenant_id: int = tenant_field()
    # Stored as text (a new status needs no migration); written only as a RunStatus.
    status: RunStatus = Field(sa_column=Column(AutoString(16), nullable=False))
    algorithm: str = Field(max_length=32)
    params: dict[str, Any] | None = jsonb_field()
    feature_set: str = Field(max_length=32)
    data_window: dict[str, Any] | None = jsonb_field()
    metrics: dict[str, Any] | None = jsonb_field()
    artifact: dict[str, Any] | None = jsonb_field()
    library_versions: dict[str, Any] | None = jsonb_field()
    seed: int = Field(default=0, sa_type=BigInteger)  # the API takes 0..2^32-1
    active: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    progress: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    error: str | None = None
    created_at: datetime | None = clock_field()
    started_at: datetime | None = timestamp_field(nullable=True)
    finished_at: datetime | None = timestamp_field(nullable=True)
    activated_at: datetime | None = timestamp_field(nullable=True)


class Segment(SQLModel, table=True):
    """A segment of one run. ``key`` is its stable identity across retrains."""

    __tablename__ = "segment"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    run_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("segmentation_run.id", ondelete="CASCADE"), nullable=False
        )
    )
    key: str = Field(max_length=32)
    name: str = Field(max_length=128)
    description: str | None = None
    size: int = 0
    profile: dict[str, Any] | None = jsonb_field()
    rules: dict[str, Any] | None = jsonb_field()
    stats: dict[str, Any] | None = jsonb_field()


class SegmentMembership(SQLModel, table=True):
    """A customer's current segment under the tenant's active run, since when and why."""

    __tablename__ = "segment_membership"
    __table_args__ = (Index("ix_segment_membership_segment", "tenant_id", "segment_key"),)

    customer_pk: int = _customer_pk_primary()
    tenant_id: int = tenant_field()
    run_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("segmentation_run.id", ondelete="CASCADE"), nullable=False
        )
    )
    segment_key: str = Field(max_length=32)
    since: datetime = timestamp_field()
    reason: dict[str, Any] | None = jsonb_field()


class MembershipHistory(SQLModel, table=True):
    """Every entry into or exit from a segment, with the reason."""

    __tablename__ = "membership_history"
    __table_args__ = (Index("ix_membership_history_segment", "tenant_id", "to_key", "changed_at"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    customer_pk: int = customer_fk_field()
    run_id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger, ForeignKey("segmentation_run.id", ondelete="SET NULL"), nullable=True
        ),
    )
    from_key: str | None = Field(default=None, max_length=32)
    to_key: str | None = Field(default=None, max_length=32)
    changed_at: datetime | None = timestamp_field(server_now=True)
    reason: dict[str, Any] | None = jsonb_field()


class CustomerScore(SQLModel, table=True):
    """Predicted value and risk: CLV, P(alive), expected purchases, churn, anomaly."""

    __tablename__ = "customer_score"

    customer_pk: int = _customer_pk_primary()
    tenant_id: int = tenant_field()
    clv: float | None = None
    p_alive: float | None = None
    expected_purchases: float | None = None
    churn: float | None = None
    anomaly: float | None = None
    updated_at: datetime | None = timestamp_field(server_now=True)
