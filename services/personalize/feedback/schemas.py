"""Feedback the storefront sends about a decision's offers, and the answer it gets."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.web.responses import FieldError
from shared.web.schema import IsoAwareDateTime

FeedbackKind = Literal["impression", "click", "conversion", "dismiss"]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "fb-000123",
                    "decision_id": "3f2b6c1d9a8e4f7b8c6d5e4f3a2b1c0d",
                    "offer_id": "spring-10",
                    "kind": "conversion",
                    "value": 59.9,
                }
            ]
        },
    )

    event_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00]+$",
        description="Your id of this event; a replay with the same id is a duplicate. "
        "Absent: one event per (decision, offer, kind).",
    )
    decision_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    offer_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: FeedbackKind
    # Strict: a number, not text or true/false.
    value: float | None = Field(default=None, ge=0, le=1e9, allow_inf_nan=False, strict=True)
    occurred_at: IsoAwareDateTime | None = None

    def key(self) -> str:
        return self.event_id or f"{self.decision_id}:{self.offer_id}:{self.kind}"


class RejectedFeedback(BaseModel):
    index: int
    errors: list[FieldError]


class FeedbackResult(BaseModel):
    """What happened to a request's events. ``accepted`` were stored."""

    accepted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: list[RejectedFeedback] = Field(default_factory=list)
    rejected_count: int = 0
