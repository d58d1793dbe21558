"""``/v1/dashboard/...`` on personalize: what each of the page's charts draws."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.personalize.experiments.schemas import ExperimentReport
from shared.runs import RunStatus

NO_SEGMENT_KEY = "-"  # decisions without a segment: unknown or non-consenting customers
Bucket = Literal["minute", "hour", "day", "week"]
Strategy = Literal["bandit", "random", "static"]


class PlacementSummary(BaseModel):
    name: str
    strategy: str | None = Field(description="null when only decisions name the placement")
    algorithm: str | None
    holdout_share: float | None
    exploration: float | None = Field(description="the bandit's uniformly drawn share")
    default_offer_id: str | None
    policy_version: int | None = Field(description="the active bandit policy's version")
    decisions: int = Field(description="decisions in the window")


class PlacementList(BaseModel):
    generated_at: datetime
    since: datetime
    placements: list[PlacementSummary]


class SegmentInfo(BaseModel):
    key: str = Field(description=f'"{NO_SEGMENT_KEY}" for decisions without a segment')
    name: str
    decisions: int


class OfferInfo(BaseModel):
    offer_id: str
    name: str
    retired: bool


class Rate(BaseModel):
    """Conversions among exposures, with a 95% Wilson score interval."""

    exposures: int = Field(description="decisions that showed the offer")
    conversions: int = Field(description="of them, decisions converted on the offer")
    rate: float | None
    ci_low: float | None
    ci_high: float | None


class OfferStat(Rate):
    segment: str = Field(description='a segment key, or "*" for all segments together')
    offer_id: str


class OfferStats(BaseModel):
    placement: str
    since: datetime
    segments: list[SegmentInfo] = Field(description="most decisions first")
    offers: list[OfferInfo]
    stats: list[OfferStat]


class AllocationSeries(BaseModel):
    offer_id: str
    counts: list[int]
    shares: list[float] = Field(description="share of the bucket's decisions")


class Allocation(BaseModel):
    """The first-ranked offer of the decisions one strategy chose, per time bucket."""

    placement: str
    strategy: Strategy
    segment: str | None = Field(description="null: all segments")
    bucket: Bucket
    times: list[datetime] = Field(description="each bucket's start")
    totals: list[int]
    series: list[AllocationSeries]


class ArmState(BaseModel):
    arm: str
    state: Literal["ahead", "behind", "collecting"] = Field(
        description="from the always-valid test: ahead or behind the control, or no "
        "difference shown yet"
    )


class DashboardExperiment(ExperimentReport):
    states: list[ArmState]


class Experiments(BaseModel):
    experiments: list[DashboardExperiment] = Field(description="newest first")


class Estimate(BaseModel):
    estimate: float
    ci_low: float
    ci_high: float


class TargetEstimate(BaseModel):
    target: str = Field(description="`uniform` or `static:<offer_id>`")
    ips: Estimate
    snips: Estimate
    dr: Estimate | None
    ess: float = Field(description="effective sample size")
    rows: int
    warning: str | None = None


class Evaluation(BaseModel):
    placement: str
    since: datetime
    observed: Rate = Field(description="what the logged policies earned: first offer converted")
    best_offer: str | None = Field(description="the first-ranked offer converting best")
    targets: list[TargetEstimate]
    message: str | None = Field(description="why there is nothing to estimate, when there is not")


class Ranking(BaseModel):
    """Offline ranking quality on the run's time split (the last ``holdout_days``)."""

    precision: float | None = Field(description="precision at k")
    ndcg: float | None = Field(description="NDCG at k")


class RecommenderRunSummary(BaseModel):
    id: int
    status: RunStatus
    progress: float
    created_at: datetime | None
    finished_at: datetime | None
    error: str | None
    customers: int | None = Field(description="customers the run learnt from")
    k: int | None = Field(description="the list length the metrics are at (10)")
    test_users: int | None = Field(description="customers scored on the time split")
    model: Ranking | None = Field(description="the recommender's figures")
    popularity: Ranking | None = Field(description="the popularity baseline's, same split")
    note: str | None = Field(description="why the run has no figures, when it has none")


class RecommenderRuns(BaseModel):
    served: int | None = Field(description="the run whose lists are served: the latest succeeded")
    runs: list[RecommenderRunSummary] = Field(description="newest first")
