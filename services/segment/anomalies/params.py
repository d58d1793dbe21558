"""What an anomaly run detects with, every default filled in; stored as its ``params``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AnomalyParams(BaseModel):
    """The windows, thresholds and seed of one detection. ``as_of`` None: the run's
    start. ``requested_by``: the API key's client, or ``"schedule"``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: datetime | None = None
    window_days: int = Field(default=30, ge=1, le=365, description="the recent window")
    history_windows: int = Field(
        default=12, ge=2, le=24, description="earlier windows of the same length compared with"
    )
    min_history_windows: int = Field(
        default=3, ge=1, le=24, description="history a customer needs to be judged"
    )
    z_threshold: float = Field(default=4.0, gt=0, le=100, description="robust z to flag a spike")
    alpha: float = Field(default=0.001, gt=0, lt=1, description="Poisson tail to flag a burst")
    collapse_alpha: float = Field(default=0.01, gt=0, lt=1)
    collapse_windows: int = Field(
        default=2, ge=1, le=6, description="recent windows in which a regular buyer stopped"
    )
    min_spike_spend: float = Field(default=200.0, ge=0)
    min_collapse_orders: float = Field(
        default=3.0, gt=0, description="orders the history must predict for a collapse"
    )
    min_burst_count: int = Field(default=3, ge=1)
    negative_score: float = Field(default=-0.1, ge=-1, le=1)
    min_sentiment_drop: float = Field(default=0.5, gt=0, le=2)
    min_recent_texts: int = Field(default=2, ge=1)
    min_bot_events_per_hour: int = Field(default=60, ge=1)
    population_share: float = Field(
        default=0.01, ge=0, le=0.5, description="share flagged as population outliers"
    )
    segment_z: float = Field(default=3.0, gt=0, le=100, description="robust z of a segment alert")
    segment_min_history: int = Field(default=3, ge=2, le=50, description="earlier runs needed")
    seed: int = Field(default=7, ge=0, le=2**32 - 1)
    requested_by: str | None = Field(default=None, max_length=128)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
