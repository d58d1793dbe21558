"""Requests and answers of the recommender routes (the table model is never one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.runs import RunStatus


class RecommenderRunCreate(BaseModel):
    """A training to queue; every field left out takes the service's default."""

    model_config = ConfigDict(extra="forbid")

    factors: int | None = Field(default=None, strict=True, ge=1, le=256)
    iterations: int | None = Field(default=None, strict=True, ge=1, le=100)
    regularization: float | None = Field(default=None, strict=True, ge=0, le=100)
    cooc_weight: float | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1,
        description="Weight of co-purchase against ALS (0 to 1)",
    )
    neighbours: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1000,
        description="How many of the most similar customers a customer's list draws on (0: none)",
    )
    neighbour_weight: float | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1,
        description="Share of the similar customers' purchases in the blend; the rest is "
        "ALS and co-purchase",
    )
    min_history: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1000,
        description="Customers with fewer distinct products bought get their segment's "
        "popular products",
    )
    seed: int | None = Field(default=None, strict=True, ge=0, le=2**31 - 1)
    exclude_bought: bool | None = Field(
        default=None,
        strict=True,
        description="Leave out what a customer bought (consumables excepted)",
    )
    repeat_categories: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Categories of consumables: recommended again after a purchase",
    )
    holdout_days: int | None = Field(default=None, strict=True, ge=1, le=3650)


class RecommenderRunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: RunStatus
    progress: float
    params: dict[str, Any] | None
    data_window: dict[str, Any] | None
    metrics: dict[str, Any] | None = Field(
        description="Offline metrics on a time split (`evaluation`) and the popularity "
        "baseline's on the same split (`baselines`)"
    )
    library_versions: dict[str, Any] | None
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class RecommendedItem(BaseModel):
    product_id: str
    score: float
    reason: str = Field(description='Why: "bought together with ...", "popular in your segment"')


class RecommendationAnswer(BaseModel):
    customer_id: str
    model_version: int | None = Field(description="The recommender run that made the list")
    items: list[RecommendedItem]
