"""What the segment table stores per segment: ``rules``, ``profile`` and ``stats``.

Written by the training task (from the modeling library's report), read by assignment
(which rule a moved customer now satisfies), the segments API, the dashboard and, through
the API, the CLI. Rows written before this contract existed have no ``version`` and may
use the modeling library's spellings: ``recall`` for ``fidelity``, features keyed by
name instead of a list. Both read as version 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_OWNED = ConfigDict(extra="forbid", frozen=True)


class RuleCondition(BaseModel):
    """One feature's interval on a surrogate-tree path, in the feature's own units."""

    model_config = _OWNED

    feature: str
    above: float | None = Field(default=None, description="lower bound, exclusive")
    at_most: float | None = Field(default=None, description="upper bound, inclusive")
    text: str

    def holds(self, value: float | None) -> bool:
        return (
            value is not None
            and (self.above is None or value > self.above)
            and (self.at_most is None or value <= self.at_most)
        )


class RulePath(BaseModel):
    """A root-to-leaf path of the surrogate tree that predicts the segment."""

    model_config = _OWNED

    text: str
    conditions: tuple[RuleCondition, ...] = ()
    label: int | None = Field(default=None, description="the model's label of the segment")
    n_customers: int | None = Field(default=None, description="fit rows on the path")
    purity: float | None = None

    def holds(self, values: Mapping[str, float]) -> bool:
        return all(c.holds(values.get(c.feature)) for c in self.conditions)


class SegmentRules(BaseModel):
    model_config = _OWNED

    version: Literal[1] = 1
    text: str | None = Field(default=None, description="the rule as one readable line")
    fidelity: float | None = Field(
        default=None, description="share of the segment's customers the rules catch (0..1)"
    )
    precision: float | None = Field(default=None, description="share of rule hits that are members")
    paths: tuple[RulePath, ...] = Field(default=(), description="largest path first")
    # Added later, absent from older rows: ``coverage`` is the fidelity under the name a
    # marketer reads (older rows: read ``fidelity``); ``low_coverage`` marks a rule that
    # describes only part of its segment.
    coverage: float | None = Field(
        default=None, description="share of the segment's customers the rule catches (0..1)"
    )
    low_coverage: bool | None = None
    source: str | None = Field(default=None, description="surrogate or segment_tree")

    @property
    def caught_share(self) -> float | None:
        """The coverage, from whichever field the writer filled."""
        return self.coverage if self.coverage is not None else self.fidelity

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        """Rows stored before version 1 copied the report's ``recall`` as the fidelity."""
        if isinstance(data, dict) and "recall" in data:
            data = dict(data)
            recall = data.pop("recall")
            if data.get("fidelity") is None:
                data["fidelity"] = recall
        return data

    def matching_path(self, values: Mapping[str, float]) -> RulePath | None:
        """The first path whose every condition ``values`` satisfy."""
        return next((path for path in self.paths if path.holds(values)), None)


class ProfileFeature(BaseModel):
    """One feature of a segment against the whole population, in the feature's units."""

    model_config = _OWNED

    name: str
    mean: float | None = None
    median: float | None = None
    population_mean: float | None = None
    ratio: float | None = Field(default=None, description="mean / population mean")
    lift: float | None = Field(
        default=None, description="how far the segment's mean stands from the population's"
    )
    # Added later, absent from older rows: the lift in the feature's own units, whose sign
    # agrees with mean vs population mean (``lift`` is on the model's log scale).
    mean_lift: float | None = None


class Standout(BaseModel):
    model_config = _OWNED

    feature: str
    direction: Literal["high", "low"]
    lift: float


class SegmentProfile(BaseModel):
    model_config = _OWNED

    version: Literal[1] = 1
    share: float | None = Field(default=None, description="share of the run's customers")
    features: tuple[ProfileFeature, ...] = ()
    standouts: tuple[Standout, ...] = Field(default=(), description="most distinctive first")

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        """Rows stored before version 1 may key the features by name, as the report does."""
        if isinstance(data, dict) and isinstance(data.get("features"), dict):
            features = data["features"]
            data = {**data, "features": [_named(name, v) for name, v in features.items()]}
        return data


def _named(name: str, value: Any) -> Any:
    return {"name": name, **value} if isinstance(value, dict) else value


def _number_or_none(value: Any) -> float | None:
    """A figure for display: anything but a finite number reads as missing."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# Statistics are shown, never computed with: an older writer stored "n/a" for a figure
# it could not compute, and such a segment is still shown, with that figure missing.
Figure = Annotated[float | None, BeforeValidator(_number_or_none)]


class SegmentStats(BaseModel):
    model_config = _OWNED

    version: Literal[1] = 1
    size: int | None = None
    share: Figure = Field(default=None, description="share of the run's customers (0..1)")
    revenue_share: Figure = None
    mean_revenue: Figure = None
    clv_share: Figure = None
    mean_clv: Figure = None
    jaccard_previous: Figure = Field(
        default=None, description="overlap with the same key's members in the previous run"
    )
    # Added later, absent from older rows.
    clv_withheld_share: Figure = Field(
        default=None, description="share of members without a CLV (too little history)"
    )
    clv_note: str | None = Field(default=None, description="why mean_clv is missing, if it is")
