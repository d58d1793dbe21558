"""Request and response models of segmentation runs (tables live in ``shared.models``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from services.segment.segmentations.runs import Promote
from services.segment.settings import Algorithm
from shared.runs import RunStatus
from shared.web.responses import error_responses as platform_error_responses

K_MIN: Final = 2
K_MAX: Final = 30


# What the shared error answers mean for segmentation runs.
_RUN_ERRORS: Final = {
    409: "The request conflicts with the run's state",
    429: "Rate limit, or the tenant's limit of runs in flight, reached; see `Retry-After`",
}


def error_responses(*extra: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the error answers a route may give."""
    return platform_error_responses(*extra, descriptions=_RUN_ERRORS)


class SegmentationCreate(BaseModel):
    """What to train; every field left out takes the service's configured default."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"algorithm": "kmeans", "k": "auto", "seed": 7, "promote": "auto"}]
        },
    )

    algorithm: Algorithm | None = Field(
        default=None, description="Clustering algorithm (default: the service's setting)"
    )
    k: int | Literal["auto"] | None = Field(
        default=None,
        description=f'Number of segments, {K_MIN}..{K_MAX}, or "auto" to choose it by '
        "silhouette, Calinski-Harabasz and Davies-Bouldin (BIC for gmm). Density-based "
        "algorithms (dbscan, hdbscan) find their own number and take no integer k.",
    )
    feature_set: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        pattern=r"^[a-z0-9_]+$",
        description="A released feature-set version, e.g. v1",
    )
    # Strict: JSON's true/false are not the numbers 1 and 0.
    seed: StrictInt | None = Field(default=None, ge=0, le=2**32 - 1, description="Random seed")
    sample_size: StrictInt | None = Field(
        default=None,
        ge=100,
        le=1_000_000,
        description="Quadratic algorithms fit on this many customers and assign the rest",
    )
    promote: Promote = Field(
        default="auto",
        description="auto: become the active segmentation when good and stable enough; "
        "always: become active when it succeeds; never: wait for an explicit activation",
    )
    skip_if_unchanged: bool = Field(
        default=False,
        description="When the active segmentation was trained on the records the tenant "
        "has now, with the same parameters, answer it (200, `unchanged: true`) instead of "
        "training the same segmentation again",
    )

    @field_validator("k", mode="before")
    @classmethod
    def _k_in_range(cls, value: object) -> object:
        if value is None or value == "auto":
            return value
        if isinstance(value, int) and not isinstance(value, bool) and K_MIN <= value <= K_MAX:
            return value
        raise ValueError(f'must be an integer from {K_MIN} to {K_MAX}, or "auto"')


class SegmentSummary(BaseModel):
    key: str
    name: str
    size: int


class SegmentationPublic(BaseModel):
    id: int
    status: RunStatus
    progress: float = Field(description="0 to 1 while it trains")
    algorithm: str
    feature_set: str
    params: dict[str, Any] = Field(description="what was asked for, defaults filled in")
    data_window: dict[str, Any] | None
    metrics: dict[str, Any] | None = Field(
        description="silhouette, calinski_harabasz, davies_bouldin, bic, k_curve, "
        "surrogate_fidelity, ari_previous; as far as the run got"
    )
    library_versions: dict[str, Any] | None
    seed: int
    active: bool
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    activated_at: datetime | None
    segments: list[SegmentSummary] = Field(default_factory=list, description="largest first")
    unchanged: bool = Field(
        default=False,
        description="true when a request with `skip_if_unchanged` got the active run back: "
        "nothing it was trained on has changed since",
    )


class SegmentationPage(BaseModel):
    items: list[SegmentationPublic] = Field(description="newest first")
    next: int | None = Field(
        description="pass as `before` for the next page; null on the last page"
    )
