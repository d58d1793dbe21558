"""Experiments: the request that starts one, and the report a marketer reads."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.personalize.cache import Arm


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "bandit vs static on home",
                    "placement": "home",
                    "arms": [
                        {"name": "control", "strategy": "static", "share": 0.5},
                        {"name": "bandit", "strategy": "bandit", "share": 0.5},
                    ],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]+$")
    placement: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    arms: list[Arm] = Field(min_length=2, max_length=5, description="The first is the control")
    metric: Literal["conversion", "revenue"] = "conversion"

    @model_validator(mode="after")
    def _arms(self) -> Self:
        if len({a.name for a in self.arms}) != len(self.arms):
            raise ValueError("arm names must be unique")
        if abs(sum(a.share for a in self.arms) - 1.0) > 1e-6:
            raise ValueError("arm shares must sum to 1")
        return self


class ArmReport(BaseModel):
    name: str
    strategy: str
    share: float
    exposures: int = Field(description="customers who saw the placement in this arm")
    conversions: int = Field(description="of them, customers who converted")
    conversion_rate: float | None
    revenue: float


class Comparison(BaseModel):
    """An arm against the control, on the experiment's metric per exposed customer."""

    arm: str
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    sequential_p_value: float = Field(description="always valid: may be read at every look")
    sequential_ci_low: float
    sequential_ci_high: float
    significant: bool
    cuped_difference: float
    cuped_ci_low: float
    cuped_ci_high: float


class ExperimentReport(BaseModel):
    experiment_id: int
    name: str
    placement: str
    metric: str
    status: str
    started_at: datetime | None
    stopped_at: datetime | None
    arms: list[ArmReport]
    comparisons: list[Comparison]
    sample_ratio_p_value: float | None
    sample_ratio_mismatch: bool
    cuped_variance_reduction: float | None = Field(
        description="share of the metric's variance explained by pre-period spend"
    )
