"""One customer's view in the segment service: features, segment, scores, sentiment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.segment.anomalies.schemas import CustomerAnomaly
from services.segment.predictions.schemas import CustomerPrediction


class CustomerSegment(BaseModel):
    key: str
    name: str | None
    since: datetime
    reason: dict[str, Any] | None = Field(description="why the customer is in this segment")
    segmentation_id: int = Field(description="the run that assigned the customer")


class CustomerScores(BaseModel):
    clv: float | None = Field(
        description="expected value over the CLV horizon, in the answer's currency; null "
        "where the model has too little of the customer's history to go on (see clv_note)"
    )
    clv_note: str | None = Field(default=None, description="why clv is null, when it is")
    p_alive: float | None = Field(description="probability the customer is still active")
    expected_purchases: float | None
    churn: float | None = Field(
        description="P(no purchase within the horizon) by the active churn model (0..1); "
        "null until a churn model has scored the customer"
    )
    anomaly: float | None = Field(description="how unusual the customer is (higher: more)")
    updated_at: datetime | None


class SentimentSummary(BaseModel):
    count: int = 0
    mean_score: float | None = Field(default=None, description="-1 (negative) .. 1 (positive)")
    last_label: str | None = None
    last_at: datetime | None = None


class CustomerSentiment(BaseModel):
    reviews: SentimentSummary
    transcripts: SentimentSummary


class MembershipChange(BaseModel):
    from_key: str | None
    to_key: str | None
    changed_at: datetime | None
    reason: dict[str, Any] | None
    segmentation_id: int | None


class CustomerProfile(BaseModel):
    customer_id: str
    feature_set: str
    currency: str = Field(description="currency of amounts (CLV, spend features)")
    features: dict[str, float | None] | None = Field(
        description="feature name → value; null until features are computed"
    )
    features_as_of: datetime | None
    segment: CustomerSegment | None = Field(description="null until the customer is assigned")
    scores: CustomerScores | None = Field(description="null until the customer is scored")
    sentiment: CustomerSentiment = Field(
        description="over the latest analysis of each review and transcript"
    )
    history: list[MembershipChange] = Field(description="last 10 segment changes, newest first")
    predictions: list[CustomerPrediction] = Field(
        default_factory=list,
        description="the active churn and purchase-propensity scores, with their top reasons",
    )
    anomalies: list[CustomerAnomaly] = Field(
        default_factory=list, description="last 10 anomaly flags, newest first"
    )
