"""What the recommender keeps: its training runs (the served lists live in Redis)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import AutoString, Field, SQLModel

from shared.models.base import (
    clock_field,
    jsonb_field,
    opaque_id_field,
    tenant_field,
    timestamp_field,
)
from shared.runs import RunStatus


class RecommenderRun(SQLModel, table=True):
    """One training of the product recommender: parameters, data window, offline
    metrics against popularity, library versions. The tenant's latest succeeded run is
    the one served (its id is the answers' ``model_version``)."""

    __tablename__ = "recommender_run"
    __table_args__ = (Index("ix_recommender_run_tenant_status", "tenant_id", "status"),)

    id: int | None = opaque_id_field("recommender_run")
    tenant_id: int = tenant_field()
    # Stored as text (a new status needs no migration); written only as a RunStatus.
    status: RunStatus = Field(sa_column=Column(AutoString(16), nullable=False))
    params: dict[str, Any] | None = jsonb_field()
    data_window: dict[str, Any] | None = jsonb_field()
    metrics: dict[str, Any] | None = jsonb_field()
    library_versions: dict[str, Any] | None = jsonb_field()
    progress: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    error: str | None = None
    created_at: datetime | None = clock_field()
    started_at: datetime | None = timestamp_field(nullable=True)
    finished_at: datetime | None = timestamp_field(nullable=True)
