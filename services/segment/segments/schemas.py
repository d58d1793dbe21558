"""Segments as the API shows them, read from what the training task stored.

``profile``, ``rules`` and ``stats`` are JSON written by the training task and read
through their contracts in ``shared.contracts.rules`` (which also read older rows).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from services.segment.modeling.labels import condition_text, label, rule_text
from shared.contracts import rules as stored
from shared.contracts.stored import read_stored
from shared.models import Segment

MAX_RULE_PATHS = 2
LOW_COVERAGE = 0.5


class FeatureProfile(BaseModel):
    name: str
    label: str = Field(default="", description="the feature as a person reads it")
    unit: str = Field(default="number", description="money, days, count, share, score, rate")
    mean: float | None = None
    population_mean: float | None = None
    lift: float | None = Field(
        default=None,
        description="how far the segment's mean stands from the population's, in population "
        "standard deviations (its sign agrees with mean vs population_mean)",
    )


class SegmentRules(BaseModel):
    text: str | None = Field(
        description="readable rule, e.g. (days since last order > 200 and total spend > €5000)"
    )
    fidelity: float | None = Field(
        description="share of the segment's customers the rule catches (0..1); as coverage"
    )
    precision: float | None = Field(
        default=None, description="share of the customers the rule catches that are members"
    )
    coverage: float | None = Field(
        default=None, description="share of the segment's customers the rule catches (0..1)"
    )
    low_coverage: bool = Field(
        default=False,
        description="the rule catches under half of the segment: a partial description only",
    )


class SegmentStats(BaseModel):
    size: int | None = None
    share: float | None = None
    revenue_share: float | None = None
    mean_revenue: float | None = None
    clv_share: float | None = None
    mean_clv: float | None = None
    jaccard_previous: float | None = Field(
        default=None, description="overlap with the same key's members in the previous run"
    )
    clv_withheld_share: float | None = Field(
        default=None, description="share of members without a CLV (too little history)"
    )
    clv_note: str | None = Field(default=None, description="why mean_clv is null, when it is")


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
    currency: str | None = Field(
        default=None,
        description="currency of amounts (rules, revenue, CLV): the shop's orders' (the most "
        "common one), else the segment_currency setting (EUR by default)",
    )
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


def profile_features(profile: stored.SegmentProfile) -> list[FeatureProfile]:
    """Features by distinctiveness."""
    features = [
        FeatureProfile(
            name=f.name,
            label=label(f.name).text,
            unit=label(f.name).unit,
            mean=f.mean,
            population_mean=f.population_mean,
            lift=f.mean_lift if f.mean_lift is not None else f.lift,
        )
        for f in profile.features
    ]
    return sorted(features, key=lambda f: -abs(f.lift or 0.0))


def segment_rules(rules: stored.SegmentRules, currency: str | None = None) -> SegmentRules:
    """The rule in words, written again from its conditions (labels, units, the shop's
    currency, brackets) where they were stored; older rows keep their stored text."""
    text = rules.text
    written = [p for p in rules.paths[:MAX_RULE_PATHS] if p.conditions]
    if written:
        text = rule_text(
            [
                [condition_text(c.feature, c.above, c.at_most, currency) for c in p.conditions]
                for p in written
            ]
        )
    elif not text and rules.paths:
        shown = [p.text for p in rules.paths[:MAX_RULE_PATHS] if p.text]
        text = shown[0] if len(shown) == 1 else " or ".join(f"({t})" for t in shown)
    coverage = rules.caught_share
    return SegmentRules(
        text=text or None,
        fidelity=rules.fidelity,
        precision=rules.precision,
        coverage=coverage,
        low_coverage=coverage is not None and coverage < LOW_COVERAGE,
    )


def segment_public(row: Segment, total: int, currency: str | None = None) -> SegmentPublic:
    """A stored segment row, its JSON columns read through their contracts."""
    where = f"segment {row.key!r} of run {row.run_id}"
    profile = read_stored(stored.SegmentProfile, row.profile or {}, where=f"profile of {where}")
    rules = read_stored(stored.SegmentRules, row.rules or {}, where=f"rules of {where}")
    stats = read_stored(stored.SegmentStats, row.stats or {}, where=f"stats of {where}")
    share = profile.share if profile.share is not None else stats.share
    if share is None and total:
        share = row.size / total
    return SegmentPublic(
        key=row.key,
        name=row.name,
        description=row.description,
        size=row.size,
        share=share,
        profile=profile_features(profile),
        rules=segment_rules(rules, currency),
        stats=SegmentStats.model_validate(stats.model_dump(exclude={"version"})),
    )
