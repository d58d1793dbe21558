"""The recommender's settings, part of `PersonalizeSettings`."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RecommendSettings(BaseModel):
    # How many items are precomputed per customer (the most a request may ask for).
    personalize_recs_top_n: int = Field(default=50, ge=1, le=200)
    # The schedule trains a tenant's recommender again once its last run is this old.
    personalize_recs_retrain_h: float = Field(default=24.0, gt=0)
    # How often beat asks whether a tenant's recommender is due.
    personalize_recs_schedule_s: float = Field(default=300.0, gt=0)
    # Offline metrics: the last days of purchases are held out to score the model on.
    personalize_recs_holdout_days: int = Field(default=30, ge=1, le=3650)
    personalize_recs_max_runs_in_flight: int = Field(default=2, ge=1)
    # Categories of consumables: bought again and again, so recommended again.
    personalize_recs_repeat_categories: list[str] = Field(default_factory=list)
