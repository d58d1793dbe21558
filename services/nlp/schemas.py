"""Request and response models of the nlp API (tables live in ``shared.models``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_TEXTS: Final = 32
MAX_TEXT_CHARS: Final = 5_000

Label = Literal["negative", "neutral", "positive"]
Status = Literal["ok", "unsupported_language", "empty", "no_customer_turns"]


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"texts": ["The parcel is two weeks late. This is ridiculous."]}]
        },
    )

    texts: list[Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]] = Field(
        min_length=1, max_length=MAX_TEXTS, description="Texts to score, in order"
    )


class AspectPublic(BaseModel):
    aspect: str
    label: Label
    score: float


class TextResult(BaseModel):
    status: Status
    language: str | None
    label: Label | None
    score: float | None = Field(description="-1 (negative) to 1 (positive)")
    confidence: float | None
    aspects: list[AspectPublic] = Field(default_factory=list)


class AnalyzeResponse(BaseModel):
    backend: str
    model_version: str
    results: list[TextResult]


class StoredAnalysis(BaseModel):
    model_version: str
    backend: str
    status: Status
    language: str | None
    label: Label | None
    score: float | None
    confidence: float | None
    details: dict[str, Any] = Field(
        description="aspects and the rating check for a review; turns, speakers, "
        "trajectory, cues, topics and resolved for a transcript"
    )
    occurred_at: datetime
    analyzed_at: datetime


class AnalysesResponse(BaseModel):
    source_kind: Literal["review", "transcript"]
    source_id: str
    analyses: list[StoredAnalysis] = Field(description="one per model version, newest first")
