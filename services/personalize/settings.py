"""The personalize service's settings: the platform's, plus serving and learning."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from services.personalize.recommend.settings import RecommendSettings
from shared.settings import Settings


class PersonalizeSettings(Settings, RecommendSettings):
    # A placement's snapshot is read from Redis at most this often per API process.
    personalize_snapshot_ttl_s: float = Field(default=1.0, ge=0)
    # Monte Carlo draws behind each logged Thompson-sampling propensity.
    personalize_propensity_draws: int = Field(default=4_000, ge=100)
    # Decisions are drained from the Redis stream to Postgres in batches of this size.
    personalize_drain_batch: int = Field(default=2_000, ge=1)
    # One drain stops after this many seconds (and a batch at least), leaving the rest of
    # a backlog to the next tick, so that learning queued meanwhile is not held up by it.
    personalize_drain_slice_s: float = Field(default=1.0, gt=0)
    # How long feedback may name a decision that is still on its way to Postgres.
    personalize_decision_ttl_s: int = Field(default=3_600, ge=60)
    # Each API process keeps the decisions it logged this many seconds (at most
    # ``personalize_replay_max`` of them) to log again if Redis loses its data before the
    # drain (every second) stored them: a few drain intervals.
    personalize_replay_window_s: float = Field(default=5.0, gt=0)
    personalize_replay_max: int = Field(default=50_000, ge=1)
    # A placement's learning policy is frozen as a versioned snapshot run this often.
    personalize_snapshot_every_s: float = Field(default=3_600.0, gt=0)
    # An order within this many hours after a click on an offer converts that decision.
    personalize_conversion_window_h: int = Field(default=72, ge=0)


@lru_cache(maxsize=1)
def get_personalize_settings() -> PersonalizeSettings:
    return PersonalizeSettings()
