"""Request and response models of anomalies (tables live in ``shared.models.anomalies``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.segment.anomalies.detectors import AnomalyKind
from shared.runs import RunStatus
from shared.web.times import IsoDatetime


class AnomalyRunCreate(BaseModel):
    """What to detect with; every field left out takes the default."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})

    as_of: IsoDatetime | None = Field(
        default=None, description="cut-off (default: now); a past one is a backtest"
    )
    window_days: int | None = Field(
        default=None, strict=True, ge=1, le=365, description="the recent window"
    )
    history_windows: int | None = Field(default=None, strict=True, ge=2, le=24)
    population_share: float | None = Field(default=None, strict=True, ge=0, le=0.5)
    seed: int | None = Field(default=None, strict=True, ge=0, le=2**32 - 1)


class AnomalyRunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: RunStatus
    progress: float
    params: dict[str, Any] | None
    data_window: dict[str, Any] | None
    metrics: dict[str, Any] | None = Field(description="customers, flags by kind, alerts")
    library_versions: dict[str, Any] | None
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class AnomalyPublic(BaseModel):
    id: int
    customer_id: str
    kind: AnomalyKind
    reason: str
    size: float = Field(description="how far from the customer's own history (robust sd)")
    observed: float | None = Field(description="the recent window's figure")
    expected: float | None = Field(description="what the customer's history predicts")
    window_start: datetime
    window_end: datetime
    detected_at: datetime
    run_id: int


class AnomalyPage(BaseModel):
    items: list[AnomalyPublic]
    next: int | None = Field(description="pass as `before` for the next page")


class SegmentAlertPublic(BaseModel):
    id: int
    segment_key: str
    segmentation_id: int
    metric: str = Field(description="`size` (members) or `value` (mean revenue)")
    observed: float
    expected: float
    lower: float
    upper: float
    size: float = Field(description="robust z of the departure")
    reason: str
    detected_at: datetime
    run_id: int


class SegmentAlertPage(BaseModel):
    items: list[SegmentAlertPublic]
    next: int | None


class CustomerAnomaly(BaseModel):
    """A flag in the customer view."""

    kind: AnomalyKind
    reason: str
    size: float
    detected_at: datetime


class KindCount(BaseModel):
    day: date
    kind: AnomalyKind
    count: int


class AnomalySummary(BaseModel):
    """What the dashboard's anomalies section draws."""

    by_day: list[KindCount] = Field(description="flags per UTC day and kind, oldest first")
    latest: list[AnomalyPublic] = Field(description="the newest flags")
