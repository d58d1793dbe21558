"""``GET /v1/dashboard/data``: everything the dashboard draws, in one answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class RunMetrics(BaseModel):
    silhouette: float | None = None
    calinski_harabasz: float | None = None
    davies_bouldin: float | None = None
    bic: float | None = None
    surrogate_fidelity: float | None = None
    ari_previous: float | None = Field(default=None, description="agreement with the previous run")
    previous_run_id: int | None = None


class ActiveRun(BaseModel):
    id: int
    algorithm: str
    feature_set: str
    k: int | str | None = Field(description="as asked for (a number or auto)")
    seed: int
    finished_at: datetime | None
    activated_at: datetime | None
    customers: int = Field(description="customers in the run's segments")
    metrics: RunMetrics
    changes_note: str | None = Field(
        default=None,
        description="why /v1/segmentations/{id}/changes cannot compare this run with "
        "`metrics.previous_run_id` (null when it can, or when there is no previous run)",
    )


class DashboardSegment(BaseModel):
    key: str
    name: str
    description: str | None
    size: int
    share: float | None
    revenue_share: float | None
    clv_share: float | None
    mean_clv: float | None
    clv_note: str | None = Field(default=None, description="why mean_clv is null, when it is")
    jaccard_previous: float | None
    rule: str | None
    fidelity: float | None
    coverage: float | None = Field(default=None, description="share of members the rule catches")
    precision: float | None = Field(default=None, description="share of those caught who belong")
    low_coverage: bool = False


class Projection(BaseModel):
    method: str
    x: list[float]
    y: list[float]
    keys: list[str] = Field(description="each point's segment key")


class Profiles(BaseModel):
    features: list[str] = Field(description="the most distinctive features, columns")
    labels: list[str] = Field(default_factory=list, description="the features as people read them")
    keys: list[str] = Field(description="segments, rows")
    lifts: list[list[float | None]] = Field(description="lifts[row][column]")


class Dendrogram(BaseModel):
    icoord: list[list[float]]
    dcoord: list[list[float]]
    labels: list[str] = Field(default_factory=list)


class KPoint(BaseModel):
    k: int
    silhouette: float | None = None
    calinski_harabasz: float | None = None
    davies_bouldin: float | None = None
    bic: float | None = None


class RunSizes(BaseModel):
    id: int
    finished_at: datetime | None
    active: bool
    ari_previous: float | None
    sizes: dict[str, int] = Field(description="segment key → size")


class ClvSeries(BaseModel):
    key: str = Field(description='segment key; "" for customers without a segment')
    counts: list[int]


class ClvHistogram(BaseModel):
    edges: list[float] = Field(description="bin edges (one more than the counts)")
    series: list[ClvSeries]
    count: int
    mean: float | None
    median: float | None
    clipped_at: float | None = Field(description="values above it are counted in the last bin")


class RecentRun(BaseModel):
    id: int
    status: str
    progress: float
    algorithm: str
    created_at: datetime | None
    finished_at: datetime | None
    active: bool
    error: str | None


class DashboardData(BaseModel):
    generated_at: datetime
    message: str | None = Field(description="why there is nothing to draw, when there is not")
    run: ActiveRun | None
    segments: list[DashboardSegment] = Field(description="largest first")
    projection: Projection | None
    profiles: Profiles | None
    dendrogram: Dendrogram | None
    k_curve: list[KPoint]
    history: list[RunSizes] = Field(description="recent succeeded runs, oldest first")
    clv: ClvHistogram | None
    recent_runs: list[RecentRun] = Field(description="newest first, any status")
    currency: str = Field(
        default="EUR", description="currency of amounts (CLV, revenue): the shop's orders' one"
    )
    colors: dict[str, str] = Field(
        default_factory=dict, description="segment key → colour (follows the key, not the order)"
    )


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
