"""Supervised predictions of the segment service: churn and purchase-propensity runs and
the probabilities they gave each customer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, text
from sqlmodel import AutoString, Field, SQLModel

from shared.models.base import (
    clock_field,
    jsonb_field,
    opaque_id_field,
    tenant_field,
    timestamp_field,
)
from shared.runs import RunStatus


class PredictionRun(SQLModel, table=True):
    """One training of a churn or purchase-propensity model, as of a cut-off.

    The model learns from labels it can observe (features as of ``as_of - horizon``,
    purchases in the horizon after that) and scores every customer as of ``as_of``.
    ``metrics`` hold its figures against the baselines on one validation split, with the
    calibration it chose; ``artifact`` the reliability curve, lift and feature importances.
    A run of the tenant's present (no ``as_of`` asked for) becomes the active one of its
    model when it succeeds; a backtest (a past ``as_of``) never does.
    """

    __tablename__ = "prediction_run"
    __table_args__ = (
        Index(
            "uq_prediction_run_active",
            "tenant_id",
            "model",
            unique=True,
            postgresql_where=text("active"),
        ),
        Index("ix_prediction_run_tenant", "tenant_id", "created_at", "id"),
    )

    id: int | None = opaque_id_field("prediction_run")
    tenant_id: int = tenant_field()
    status: RunStatus = Field(sa_column=Column(AutoString(16), nullable=False))
    model: str = Field(max_length=32)
    params: dict[str, Any] | None = jsonb_field()
    feature_set: str = Field(max_length=32)
    as_of: datetime | None = timestamp_field(nullable=True)
    horizon_days: int
    data_window: dict[str, Any] | None = jsonb_field()
    metrics: dict[str, Any] | None = jsonb_field()
    artifact: dict[str, Any] | None = jsonb_field()
    library_versions: dict[str, Any] | None = jsonb_field()
    seed: int = Field(default=0, sa_type=BigInteger)
    active: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    progress: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    error: str | None = None
    created_at: datetime | None = clock_field()
    started_at: datetime | None = timestamp_field(nullable=True)
    finished_at: datetime | None = timestamp_field(nullable=True)


class PredictionScore(SQLModel, table=True):
    """One customer's probability under one run, with the features that pushed it most."""

    __tablename__ = "prediction_score"
    __table_args__ = (Index("ix_prediction_score_customer", "customer_pk"),)

    run_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("prediction_run.id", ondelete="CASCADE"), primary_key=True
        )
    )
    customer_pk: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
        )
    )
    tenant_id: int = tenant_field()
    probability: float = Field(sa_column=Column(Float, nullable=False))
    expected_spend: float | None = None
    reasons: list[dict[str, Any]] | None = jsonb_field()
