"""Behaviour anomalies: the detection runs, the customers they flag, the segment alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Text, UniqueConstraint
from sqlmodel import AutoString, Field, SQLModel

from shared.models.base import (
    clock_field,
    customer_fk_field,
    jsonb_field,
    opaque_id_field,
    tenant_field,
    timestamp_field,
)
from shared.runs import RunStatus


def _run_fk() -> Any:
    return Field(
        sa_column=Column(
            BigInteger, ForeignKey("anomaly_run.id", ondelete="CASCADE"), nullable=False
        )
    )


class AnomalyRun(SQLModel, table=True):
    """One detection over a tenant's customers and segments, as of a time."""

    __tablename__ = "anomaly_run"
    __table_args__ = (Index("ix_anomaly_run_tenant_created", "tenant_id", "created_at"),)

    id: int | None = opaque_id_field("anomaly_run")
    tenant_id: int = tenant_field()
    # Stored as text (a new status needs no migration); written only as a RunStatus.
    status: RunStatus = Field(sa_column=Column(AutoString(16), nullable=False))
    params: dict[str, Any] | None = jsonb_field()
    data_window: dict[str, Any] | None = jsonb_field()
    metrics: dict[str, Any] | None = jsonb_field()
    library_versions: dict[str, Any] | None = jsonb_field()
    seed: int = Field(default=0, sa_type=BigInteger)
    progress: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    error: str | None = None
    created_at: datetime | None = clock_field()
    started_at: datetime | None = timestamp_field(nullable=True)
    finished_at: datetime | None = timestamp_field(nullable=True)


class AnomalyFlag(SQLModel, table=True):
    """A customer whose recent window departs from their own history (or the population).

    ``size`` is how far, in robust standard deviations (or the population score for a
    population outlier); ``observed`` and ``expected`` the window's figure and what the
    customer's history predicts; ``reason`` says it in words, without personal data."""

    __tablename__ = "anomaly_flag"
    __table_args__ = (
        UniqueConstraint("run_id", "customer_pk", "kind"),
        Index("ix_anomaly_flag_tenant_detected", "tenant_id", "detected_at", "id"),
    )

    id: int | None = opaque_id_field("anomaly_flag")
    tenant_id: int = tenant_field()
    customer_pk: int = customer_fk_field()
    run_id: int = _run_fk()
    kind: str = Field(max_length=32)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    size: float
    observed: float | None = None
    expected: float | None = None
    window_start: datetime = timestamp_field()
    window_end: datetime = timestamp_field()
    detected_at: datetime | None = clock_field()


class SegmentAlert(SQLModel, table=True):
    """A segment whose size or value left the band its history of runs predicts."""

    __tablename__ = "segment_alert"
    __table_args__ = (
        UniqueConstraint("run_id", "segment_key", "metric"),
        Index("ix_segment_alert_tenant_detected", "tenant_id", "detected_at"),
    )

    id: int | None = opaque_id_field("segment_alert")
    tenant_id: int = tenant_field()
    run_id: int = _run_fk()
    segmentation_run_id: int = Field(sa_type=BigInteger)
    segment_key: str = Field(max_length=32)
    metric: str = Field(max_length=16)
    observed: float
    expected: float
    lower: float
    upper: float
    size: float
    reason: str = Field(sa_column=Column(Text, nullable=False))
    detected_at: datetime | None = clock_field()
