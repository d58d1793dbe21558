"""Request and answer bodies of the offer and placement admin routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from services.personalize.cache import Algorithm, Strategy
from services.personalize.moments import Moment

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", examples=["home"])]
SegmentKey = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[^\x00]+$")]
OfferKind = Literal["discount", "free_shipping", "content", "product"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OfferUpdate(_Input):
    """An offer's whole definition (``PUT`` replaces it)."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")
    description: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")
    kind: OfferKind
    discount_code: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"
    )
    # Strict numbers: "12" or true is a caller's mistake, not a value (as ingest answers).
    value: float | None = Field(default=None, strict=True, ge=0, le=1e9, allow_inf_nan=False)
    placements: list[Name] = Field(min_length=1, max_length=20)
    segments: list[SegmentKey] | None = Field(
        default=None, min_length=1, max_length=100, description="Absent: everyone"
    )
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    max_impressions_per_customer_per_day: int | None = Field(
        default=None, strict=True, ge=1, le=1000
    )

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, ends_at: datetime | None, info: ValidationInfo) -> datetime | None:
        # A field validator (not a model one): the error names ``ends_at``.
        starts_at = info.data.get("starts_at")
        if starts_at and ends_at and ends_at <= starts_at:
            raise ValueError("ends_at must be after starts_at")
        return ends_at


class OfferCreate(OfferUpdate):
    offer_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "offer_id": "spring-10",
                    "name": "10% off everything",
                    "kind": "discount",
                    "discount_code": "SPRING10",
                    "value": 10,
                    "placements": ["home", "email"],
                    "segments": ["s1", "s3"],
                }
            ]
        },
    )


class OfferPublic(BaseModel):
    offer_id: str
    name: str
    description: str | None
    kind: str
    discount_code: str | None
    value: float | None
    placements: list[str]
    segments: list[str] | None
    starts_at: datetime | None
    ends_at: datetime | None
    max_impressions_per_customer_per_day: int | None
    retired_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    model_config = ConfigDict(from_attributes=True)


class OfferPage(BaseModel):
    offers: list[OfferPublic]


class PlacementUpdate(_Input):
    strategy: Strategy = "bandit"
    algorithm: Algorithm = "thompson"
    holdout_share: float = Field(default=0.05, strict=True, ge=0, le=0.5)
    # Share of a bandit's answers drawn uniformly among the eligible offers: the floor of
    # every logged propensity (exploration / offers), which off-policy estimates divide by.
    exploration: float = Field(default=0.05, strict=True, ge=0, le=1)
    default_offer_id: str | None = Field(default=None, min_length=1, max_length=128)


class PlacementPublic(BaseModel):
    placement: str = Field(validation_alias="name")
    strategy: str
    algorithm: str
    holdout_share: float
    exploration: float
    default_offer_id: str | None
    updated_at: datetime | None

    model_config = ConfigDict(from_attributes=True)
