"""Request and response models of prediction runs (tables live in ``shared.models``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.segment.predictions.data import Model
from shared.runs import RunStatus

MAX_HORIZON_DAYS = 730


class PredictionCreate(BaseModel):
    """What to train; fields left out take the service's defaults."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "churn", "horizon_days": 90}]},
    )

    model: Model = Field(
        description="churn: no purchase within the horizon; purchase_propensity: at "
        "least one purchase within it (with the expected spend)"
    )
    horizon_days: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_HORIZON_DAYS,
        description="How far ahead a label looks (default: the service's setting, 90)",
    )
    as_of: AwareDatetime | None = Field(
        default=None,
        description="Score as of this time (with a time zone; not in the future). Left "
        "out: now, and the run becomes the model's active one. A past time is a backtest, "
        "measured against what really happened when its horizon is over.",
    )
    feature_set: str | None = Field(
        default=None, min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$"
    )
    seed: int | None = Field(
        default=None, strict=True, ge=0, le=2**32 - 1, description="Random seed"
    )


class PredictionPublic(BaseModel):
    id: int
    status: RunStatus
    progress: float
    model: str
    as_of: datetime | None = Field(description="the scoring cut-off (set when the run starts)")
    horizon_days: int
    feature_set: str
    params: dict[str, Any]
    data_window: dict[str, Any] | None
    metrics: dict[str, Any] | None = Field(
        description="auc, pr_auc, ece, brier and the chosen calibration on the validation "
        "split; baselines (recency_only, bgnbd_expected_purchases) on the same split; "
        "backtest: the same against what happened after as_of, when known"
    )
    artifact: dict[str, Any] | None = Field(
        description="reliability curves (before and after calibration) and lift by decile"
    )
    library_versions: dict[str, Any] | None
    seed: int
    active: bool
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class PredictionPage(BaseModel):
    items: list[PredictionPublic] = Field(description="newest first")
    next: int | None = Field(description="pass as `before` for the next page")


class Reason(BaseModel):
    feature: str
    value: float
    push: float = Field(
        description="how much higher the probability is for this value than for the "
        "population's median (negative: this value lowers it)"
    )


class ScorePublic(BaseModel):
    customer_id: str
    probability: float
    expected_spend: float | None
    reasons: list[Reason]


class ScorePage(BaseModel):
    prediction_id: int
    items: list[ScorePublic] = Field(description="by customer, in a stable order")
    next: int | None = Field(description="pass as `after` for the next page")


class CustomerPrediction(BaseModel):
    """One active model's score of a customer."""

    model: str
    probability: float
    expected_spend: float | None
    reasons: list[Reason]
    prediction_id: int
    as_of: datetime | None
    horizon_days: int
