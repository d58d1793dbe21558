"""What the nlp service stores in ``text_analysis.details``, per kind of text.

Written by nlp's analyzer, read by the segment service's sentiment features, the nlp API
and the CLI's demo report. Rows written before this contract existed have no ``version``
and read as version 1 (their shape is the same). A text that was not scored (empty, or
in an unsupported language) stores ``{}``, which reads as no details.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.stored import StoredShapeError, read_stored

_OWNED = ConfigDict(extra="forbid", frozen=True)

Label = Literal["negative", "neutral", "positive"]
Direction = Literal["improved", "worsened", "steady"]


class AspectMood(BaseModel):
    model_config = _OWNED

    aspect: str
    label: Label
    score: float


class ReviewDetails(BaseModel):
    model_config = _OWNED

    version: Literal[1] = 1
    aspects: tuple[AspectMood, ...] = ()
    rating: int | None = None
    rating_mismatch: bool = Field(
        default=False, description="a confident label contradicts the star rating"
    )


class TurnMood(BaseModel):
    model_config = _OWNED

    turn: int = Field(description="0-based position in the transcript")
    speaker: str
    label: Label
    score: float


class LabelCounts(BaseModel):
    model_config = _OWNED

    negative: int = 0
    neutral: int = 0
    positive: int = 0


class SpeakerMood(BaseModel):
    model_config = _OWNED

    turns: int
    label: Label
    mean_score: float
    labels: LabelCounts


class Trajectory(BaseModel):
    """The customer's mood in the first third of their turns against the last third."""

    model_config = _OWNED

    start: float
    end: float
    change: float
    direction: Direction


class TranscriptDetails(BaseModel):
    model_config = _OWNED

    version: Literal[1] = 1
    turns: tuple[TurnMood, ...]
    speakers: dict[str, SpeakerMood]
    cues: dict[str, tuple[int, ...]] = Field(description="cue name → customer turn numbers")
    topics: tuple[str, ...]
    escalation: bool
    churn_risk: bool
    trajectory: Trajectory | None = Field(description="null without customer turns")
    resolved: bool | None = Field(description="null without customer turns")


def read_details(
    kind: str, details: object, *, where: str
) -> ReviewDetails | TranscriptDetails | None:
    """The stored details of a ``kind`` ("review" or "transcript") analysis; None when the
    text was not scored."""
    if not details:
        return None
    if kind == "transcript":
        return read_stored(TranscriptDetails, details, where=where)
    if kind == "review":
        return read_stored(ReviewDetails, details, where=where)
    raise StoredShapeError(f"{where}: no details contract for texts of kind {kind!r}")
