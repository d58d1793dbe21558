"""Segments as the API shows them, read tolerantly from what the training task stored.

``profile`` and ``rules`` are JSON written by the training task; these models accept the
documented shapes (features as a list, rules as one text) as well as the modeling
library's (features by name, rules as surrogate-tree paths), and missing keys.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_RULE_PATHS = 3


class FeatureProfile(BaseModel):
    name: str
    mean: float | None = None
    population_mean: float | None = None
    lift: float | None = Field(
        default=None, description="how far the segment's mean stands from the population's"
    )


class SegmentRules(BaseModel):
    text: str | None = Field(description="readable rule, e.g. recency_days > 120 and ...")
    fidelity: float | None = Field(
        description="share of the segment's customers the rule catches (0..1)"
    )
    precision: float | None = None


class SegmentStats(BaseModel):
    model_config = ConfigDict(extra="allow")

    revenue_share: float | None = None
    clv_share: float | None = None
    mean_clv: float | None = None
    jaccard_previous: float | None = Field(
        default=None, description="overlap with the same key's members in the previous run"
    )


class SegmentPublic(BaseModel):
    key: str = Field(description="stable across retrains")
    name: str
    description: str | None
    size: int
    share: float | None = Field(description="share of the run's customers (0..1)")
    profile: list[FeatureProfile] = Field(description="features, most distinctive first")
    rules: SegmentRules
    stats: SegmentStats


class SegmentsResponse(BaseModel):
    segmentation_id: int | None = Field(description="the active run; null when none is")
    algorithm: str | None = None
    feature_set: str | None = None
    activated_at: datetime | None = None
    total_customers: int = 0
    message: str | None = Field(default=None, description="set when there is nothing to show")
    segments: list[SegmentPublic] = Field(default_factory=list, description="largest first")


class MemberPublic(BaseModel):
    customer_id: str
    since: datetime
    clv: float | None
    p_alive: float | None


class MembersPage(BaseModel):
    segment_key: str
    items: list[MemberPublic]
    next: int | None = Field(description="pass as `after` for the next page; null at the end")


class RunSize(BaseModel):
    segmentation_id: int
    finished_at: datetime | None
    name: str
    size: int
    active: bool


class DailyFlow(BaseModel):
    day: date
    entries: int
    exits: int


class SegmentHistory(BaseModel):
    segment_key: str
    sizes: list[RunSize] = Field(description="per run that had this key, oldest first")
    flows: list[DailyFlow] = Field(description="entries and exits per day, last 90 days")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def profile_features(profile: dict[str, Any] | None) -> list[FeatureProfile]:
    """Features by distinctiveness, from a list of ``{name, ...}`` or a ``{name: {...}}``."""
    raw = (profile or {}).get("features") or []
    if isinstance(raw, dict):
        items = [{"name": name, **value} for name, value in raw.items() if isinstance(value, dict)]
    else:
        items = [item for item in raw if isinstance(item, dict) and "name" in item]
    features = [
        FeatureProfile(
            name=str(item["name"]),
            mean=_number(item.get("mean")),
            population_mean=_number(item.get("population_mean")),
            lift=_number(item.get("lift")),
        )
        for item in items
    ]
    return sorted(features, key=lambda f: -abs(f.lift or 0.0))


def segment_rules(rules: dict[str, Any] | None) -> SegmentRules:
    rules = rules or {}
    text = rules.get("text")
    paths = [p for p in rules.get("paths") or [] if isinstance(p, dict) and p.get("text")]
    if not text and paths:
        shown = [str(p["text"]) for p in paths[:MAX_RULE_PATHS]]
        text = shown[0] if len(shown) == 1 else " or ".join(f"({t})" for t in shown)
    fidelity = _number(rules.get("fidelity"))
    return SegmentRules(
        text=str(text) if text else None,
        fidelity=fidelity if fidelity is not None else _number(rules.get("recall")),
        precision=_number(rules.get("precision")),
    )


def segment_public(row: dict[str, Any], total: int) -> SegmentPublic:
    """A stored segment row (key, name, description, size, profile, rules, stats)."""
    profile, stats = row.get("profile") or {}, row.get("stats") or {}
    share = _number(profile.get("share"))
    if share is None:
        share = _number(stats.get("share"))
    if share is None and total:
        share = row["size"] / total
    typed = {name: _number(stats.get(name)) for name in SegmentStats.model_fields}
    return SegmentPublic(
        key=row["key"],
        name=row["name"],
        description=row.get("description"),
        size=row["size"],
        share=share,
        profile=profile_features(profile),
        rules=segment_rules(row.get("rules")),
        stats=SegmentStats.model_validate({**stats, **typed}),
    )
