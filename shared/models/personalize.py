"""What the personalize service keeps: offers, placements, policies, decisions, feedback.

Decisions and feedback are the decision log every evaluation reads: a decision records
which offers were shown with which probability (propensity), by which policy version and
in which experiment arm; feedback says what the customer did with them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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


class Offer(SQLModel, table=True):
    """Something the storefront can show; retired offers stop serving and keep history."""

    __tablename__ = "offer"
    __table_args__ = (
        UniqueConstraint("tenant_id", "offer_id"),
        Index(
            "ix_offer_discount_code",
            "tenant_id",
            "discount_code",
            postgresql_where=text("discount_code IS NOT NULL"),
        ),
    )

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    offer_id: str = Field(max_length=128)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    kind: str = Field(max_length=16)  # discount, free_shipping, content, product
    discount_code: str | None = Field(default=None, max_length=64)
    value: float | None = None
    placements: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    segments: list[str] | None = Field(default=None, sa_column=Column(ARRAY(Text)))
    starts_at: datetime | None = timestamp_field(nullable=True)
    ends_at: datetime | None = timestamp_field(nullable=True)
    max_impressions_per_customer_per_day: int | None = None
    retired_at: datetime | None = timestamp_field(nullable=True)
    created_at: datetime | None = timestamp_field(server_now=True)
    updated_at: datetime | None = timestamp_field(server_now=True)


class Placement(SQLModel, table=True):
    """Where offers are shown, and how the answer is chosen there."""

    __tablename__ = "placement"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    name: str = Field(max_length=64)
    strategy: str = Field(default="bandit", max_length=16)  # bandit, static, random
    algorithm: str = Field(default="thompson", max_length=32)
    holdout_share: float = 0.05
    # Share of a bandit's answers drawn uniformly: the floor of every logged propensity.
    exploration: float = Field(default=0.05, sa_column_kwargs={"server_default": text("0.05")})
    default_offer_id: str | None = Field(default=None, max_length=128)
    updated_at: datetime | None = timestamp_field(server_now=True)


class PolicyRun(SQLModel, table=True):
    """A bandit policy's state as a model run: its posteriors at one version."""

    __tablename__ = "policy_run"
    __table_args__ = (
        UniqueConstraint("tenant_id", "placement", "version"),
        Index(
            "uq_policy_run_active",
            "tenant_id",
            "placement",
            unique=True,
            postgresql_where=text("active"),
        ),
    )

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    placement: str = Field(max_length=64)
    version: int
    # Stored as text (a new status needs no migration); written only as a RunStatus.
    status: RunStatus = Field(sa_column=Column(AutoString(16), nullable=False))
    algorithm: str = Field(max_length=32)
    params: dict[str, Any] | None = jsonb_field()
    state: dict[str, Any] | None = jsonb_field()
    metrics: dict[str, Any] | None = jsonb_field()
    library_versions: dict[str, Any] | None = jsonb_field()
    active: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    progress: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    error: str | None = None
    created_at: datetime | None = timestamp_field(server_now=True)
    started_at: datetime | None = timestamp_field(nullable=True)
    finished_at: datetime | None = timestamp_field(nullable=True)


class Decision(SQLModel, table=True):
    """One answer to the storefront, holdout and fallback answers included."""

    __tablename__ = "decision"
    __table_args__ = (
        Index("ix_decision_tenant_placement_created", "tenant_id", "placement", "created_at"),
        Index("ix_decision_subject", "tenant_id", "subject_hash"),
    )

    decision_id: str = Field(primary_key=True, max_length=32)  # made on the hot path
    tenant_id: int = tenant_field()
    customer_pk: int | None = customer_fk_field(nullable=True)
    subject_hash: str = Field(max_length=64)  # keyed hash of the caller's customer id
    placement: str = Field(max_length=64)
    segment_key: str | None = Field(default=None, max_length=32)
    strategy: str = Field(max_length=16)
    offers: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    # What the policy chose among: evaluating another policy on this log needs it.
    eligible: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    policy_version: int | None = None
    experiment_id: int | None = Field(default=None, sa_type=BigInteger)
    arm: str | None = Field(default=None, max_length=64)
    personalised: bool = True
    # The bandit's algorithm, and the customer's numeric context where it read one
    # (``linear_thompson``); never for a customer without marketing consent.
    algorithm: str | None = Field(default=None, max_length=32)
    context: list[float] | None = Field(default=None, sa_column=Column(ARRAY(Float)))
    created_at: datetime = timestamp_field()
    logged_at: datetime | None = timestamp_field(server_now=True)


class Feedback(SQLModel, table=True):
    """What a customer did with a decision's offer; ``applied_at`` once the policy learned it."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        Index(
            "ix_feedback_unapplied",
            "tenant_id",
            "id",
            postgresql_where=text("applied_at IS NULL"),
        ),
    )

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    event_id: str = Field(max_length=128)
    # No foreign key: feedback may arrive before the decision log has been drained.
    decision_id: str = Field(max_length=32, index=True)
    subject_hash: str = Field(max_length=64)
    customer_pk: int | None = customer_fk_field(nullable=True)
    offer_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)  # impression, click, conversion, dismiss
    value: float | None = Field(default=None, sa_column=Column(Float))
    occurred_at: datetime = timestamp_field()
    received_at: datetime | None = timestamp_field(server_now=True)
    applied_at: datetime | None = timestamp_field(nullable=True)


class ExperimentStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class Experiment(SQLModel, table=True):
    """Strategies compared on one placement with sticky, hash-based arms."""

    __tablename__ = "experiment"

    id: int | None = opaque_id_field("experiment")
    tenant_id: int = tenant_field()
    name: str = Field(max_length=128)
    placement: str = Field(max_length=64)
    arms: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    metric: str = Field(default="conversion", max_length=16)
    status: ExperimentStatus = Field(sa_column=Column(AutoString(16), nullable=False))
    started_at: datetime | None = clock_field()
    stopped_at: datetime | None = timestamp_field(nullable=True)


class AttributionCursor(SQLModel, table=True):
    """How far the worker has read the orders table for conversions (by order id)."""

    __tablename__ = "attribution_cursor"

    name: str = Field(primary_key=True, max_length=32)
    last_order_pk: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime | None = timestamp_field(server_now=True)
