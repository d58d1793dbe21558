"""The segment service's settings: the platform's, plus training, assignment and CLV."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field

from shared.settings import Settings

Algorithm = Literal["kmeans", "minibatch_kmeans", "gmm", "agglomerative", "dbscan", "hdbscan"]


class SegmentSettings(Settings):
    # What a scheduled or default retrain uses.
    segment_algorithm: Algorithm = "kmeans"
    segment_k: int | Literal["auto"] = "auto"
    segment_feature_set: str = "v1"
    segment_seed: int = 7
    # Quadratic algorithms fit on a sample of this many customers and assign the rest.
    segment_sample_size: int = Field(default=10_000, ge=100)
    # BLAS/OpenMP threads per fit: pools oversubscribe badly on small, busy machines.
    segment_threads: int = Field(default=1, ge=1)
    # A training run's feature pass is split into this many statements over ranges of
    # customers that run at once, each on its own connection (and Postgres core).
    segment_feature_parts: int = Field(default=2, ge=1)
    # A tenant may have this many runs pending or running at once; asking for another
    # answers 429, and the schedule skips the tenant. One tenant cannot fill the runs queue.
    segment_max_runs_in_flight: int = Field(default=3, ge=1)
    # Scheduled retrain (Celery beat), in seconds; 0 turns it off.
    segment_retrain_every_s: int = Field(default=24 * 3600, ge=0)
    # A retrain is promoted automatically when it is at least this good and this stable.
    segment_promote_min_silhouette: float = 0.15
    segment_promote_min_ari: float = 0.6
    # Customer lifetime value: horizon in days and annual discount rate.
    clv_horizon_days: int = Field(default=365, ge=1)
    clv_discount_rate: float = Field(default=0.10, ge=0)
    # Churn and purchase-propensity models (services.segment.predictions): the horizon
    # a label looks ahead, and how often beat retrains them (0 turns it off).
    prediction_horizon_days: int = Field(default=90, ge=1, le=730)
    prediction_retrain_every_s: int = Field(default=24 * 3600, ge=0)

    # Webhooks (`services.segment.webhooks`): how often beat runs the delivery tick (0
    # turns it off), changes per delivery, attempts before a delivery is dead-lettered,
    # the backoff between attempts (doubling from base to max, with jitter), the receiver's
    # time to answer, how long one tick may keep sending, and how far back a tick looks
    # for membership changes.
    webhook_every_s: float = Field(default=5.0, ge=0)
    webhook_batch_size: int = Field(default=500, ge=1, le=10_000)
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_base_s: float = Field(default=30.0, gt=0)
    webhook_backoff_max_s: float = Field(default=6 * 3600.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_tick_budget_s: float = Field(default=20.0, gt=0)
    webhook_lookback_s: int = Field(default=24 * 3600, ge=60)
    # Receivers on loopback, private or link-local addresses are refused (SSRF) unless
    # this is set: for on-premise receivers on a private network, and tests.
    webhook_allow_private: bool = False
    # Scheduled anomaly detection (Celery beat), in seconds; 0 turns it off.
    segment_anomaly_every_s: int = Field(default=24 * 3600, ge=0)
    # A customer with one order, first placed fewer days ago than this, gets no CLV (null,
    # with the reason): the model has only the population's average to give them.
    clv_min_history_days: float = Field(default=180.0, ge=0)
    # Currency of amounts (CLV, spend) where the shop's orders do not name one.
    segment_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")


@lru_cache(maxsize=1)
def get_segment_settings() -> SegmentSettings:
    return SegmentSettings()
