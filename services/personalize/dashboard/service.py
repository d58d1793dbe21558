"""Assembling each chart's data from the repository's counts and the existing reports."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from services.personalize.dashboard import repository as repo
from services.personalize.dashboard.schemas import (
    NO_SEGMENT_KEY,
    Allocation,
    AllocationSeries,
    ArmState,
    Bucket,
    DashboardExperiment,
    Evaluation,
    Experiments,
    OfferInfo,
    OfferStat,
    OfferStats,
    PlacementList,
    PlacementSummary,
    Ranking,
    Rate,
    RecommenderRuns,
    RecommenderRunSummary,
    SegmentInfo,
    Strategy,
    TargetEstimate,
)
from services.personalize.evaluation.service import NothingToEvaluate, Target, evaluate_placement
from services.personalize.experiments.service import experiment_report
from services.personalize.recommend.runs import latest_succeeded

ALL_SEGMENTS = "*"
Z_95 = 1.959963984540054
MAX_EXPERIMENTS = 10
# Finest bucket that keeps the chart under a few hundred points for the data's span.
_BUCKETS: tuple[tuple[timedelta, Bucket], ...] = (
    (timedelta(hours=3), "minute"),
    (timedelta(days=3), "hour"),
    (timedelta(days=180), "day"),
)


def wilson(conversions: int, exposures: int, z: float = Z_95) -> Rate:
    """The Wilson score interval: sensible at 0 or 1 conversions and for small counts."""
    if exposures <= 0:
        return Rate(exposures=0, conversions=0, rate=None, ci_low=None, ci_high=None)
    p = conversions / exposures
    denominator = 1 + z * z / exposures
    centre = (p + z * z / (2 * exposures)) / denominator
    half = z * math.sqrt(p * (1 - p) / exposures + z * z / (4 * exposures**2)) / denominator
    return Rate(
        exposures=exposures,
        conversions=conversions,
        rate=p,
        ci_low=max(0.0, centre - half),
        ci_high=min(1.0, centre + half),
    )


def placement_list(session: Session, *, tenant_id: int, since: datetime) -> PlacementList:
    rows = repo.placements(session, tenant_id=tenant_id, since=since)
    return PlacementList(
        generated_at=datetime.now(UTC),
        since=since,
        placements=[PlacementSummary.model_validate(row) for row in rows],
    )


def offer_stats(session: Session, *, tenant_id: int, placement: str, since: datetime) -> OfferStats:
    rows = repo.offer_stats(session, tenant_id=tenant_id, placement=placement, since=since)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    stats = []
    for row in rows:
        rate = wilson(row["conversions"], row["exposures"])
        stats.append(
            OfferStat(segment=row["segment"], offer_id=row["offer_id"], **rate.model_dump())
        )
        totals[row["offer_id"]][0] += row["conversions"]
        totals[row["offer_id"]][1] += row["exposures"]
    overall = [
        OfferStat(segment=ALL_SEGMENTS, offer_id=offer, **wilson(*counts).model_dump())
        for offer, counts in sorted(totals.items())
    ]
    known = repo.offers(session, tenant_id=tenant_id, placement=placement, shown=list(totals))
    named = {row["offer_id"] for row in known}
    offers = [OfferInfo.model_validate(row) for row in known] + [
        OfferInfo(offer_id=offer, name=offer, retired=True)
        for offer in totals
        if offer not in named
    ]
    segments = [
        SegmentInfo(
            key=row["key"],
            name=row["name"] or ("no segment" if row["key"] == NO_SEGMENT_KEY else row["key"]),
            decisions=row["decisions"],
        )
        for row in repo.segments(session, tenant_id=tenant_id, placement=placement, since=since)
    ]
    return OfferStats(
        placement=placement, since=since, segments=segments, offers=offers, stats=overall + stats
    )


def allocation(
    session: Session,
    *,
    tenant_id: int,
    placement: str,
    since: datetime,
    segment: str | None,
    bucket: Bucket | None,
    strategy: Strategy,
) -> Allocation:
    chosen = bucket or _auto_bucket(session, tenant_id=tenant_id, placement=placement, since=since)
    rows = repo.allocation(
        session,
        tenant_id=tenant_id,
        placement=placement,
        since=since,
        bucket=chosen,
        segment=segment,
        strategy=strategy,
    )
    times = sorted({row["bucket"] for row in rows})
    index = {time: i for i, time in enumerate(times)}
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(times))
    for row in rows:
        counts[row["offer_id"]][index[row["bucket"]]] += row["decisions"]
    totals = [sum(column) for column in zip(*counts.values(), strict=True)] if counts else []
    return Allocation(
        placement=placement,
        strategy=strategy,
        segment=segment,
        bucket=chosen,
        times=times,
        totals=totals,
        series=[
            AllocationSeries(
                offer_id=offer,
                counts=values,
                shares=[v / t if t else 0.0 for v, t in zip(values, totals, strict=True)],
            )
            for offer, values in sorted(counts.items())
        ],
    )


def _auto_bucket(session: Session, *, tenant_id: int, placement: str, since: datetime) -> Bucket:
    first, last = repo.span(session, tenant_id=tenant_id, placement=placement, since=since)
    width = (last - first) if first and last else timedelta(0)
    return next((name for limit, name in _BUCKETS if width <= limit), "week")


def experiments(session: Session, *, tenant_id: int, placement: str | None) -> Experiments:
    ids = repo.experiment_ids(
        session, tenant_id=tenant_id, placement=placement, limit=MAX_EXPERIMENTS
    )
    reports = []
    for experiment_id in ids:
        report = experiment_report(session, tenant_id=tenant_id, experiment_id=experiment_id)
        states = [
            ArmState(
                arm=c.arm,
                state="collecting"
                if not c.significant
                else "ahead"
                if c.difference > 0
                else "behind",
            )
            for c in report.comparisons
        ]
        reports.append(DashboardExperiment(**report.model_dump(), states=states))
    return Experiments(experiments=reports)


def evaluation(session: Session, *, tenant_id: int, placement: str, since: datetime) -> Evaluation:
    """Uniform random and the best single offer, evaluated on the placement's own log."""
    rows = repo.first_offers(session, tenant_id=tenant_id, placement=placement, since=since)
    observed = wilson(sum(r["conversions"] for r in rows), sum(r["exposures"] for r in rows))
    best = max(
        rows, key=lambda r: (r["conversions"] / r["exposures"], r["exposures"]), default=None
    )
    best_offer = best["offer_id"] if best else None
    names = ["uniform"] + ([f"static:{best_offer}"] if best_offer else [])
    targets: list[TargetEstimate] = []
    message = None
    for name in names:
        try:
            report = evaluate_placement(
                session,
                tenant_id=tenant_id,
                placement=placement,
                target=Target.parse(name),
                since=since,
            )
        except NothingToEvaluate as exc:
            message = str(exc)
            break
        data: dict[str, Any] = report.to_dict()
        targets.append(TargetEstimate(target=name, **data))
    return Evaluation(
        placement=placement,
        since=since,
        observed=observed,
        best_offer=best_offer,
        targets=targets,
        message=message,
    )


def _ranking(figures: dict[str, Any], k: int) -> Ranking | None:
    ranking = Ranking(precision=figures.get(f"precision_at_{k}"), ndcg=figures.get(f"ndcg_at_{k}"))
    return None if ranking.precision is None and ranking.ndcg is None else ranking


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _run_summary(row: dict[str, Any]) -> RecommenderRunSummary:
    """A run's row as the card shows it: its offline figures against popularity's (the
    run keeps ``{"evaluation": {...}, "baselines": {"popularity": {...}}}``)."""
    metrics = _object(row["metrics"])
    evaluation = _object(metrics.get("evaluation"))
    popularity = _object(_object(metrics.get("baselines")).get("popularity"))
    k = evaluation.get("k")
    skipped = evaluation.get("skipped")
    return RecommenderRunSummary(
        id=row["id"],
        status=row["status"],
        progress=row["progress"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        customers=_object(row["data_window"]).get("customers"),
        k=k,
        test_users=evaluation.get("test_users"),
        model=_ranking(evaluation, k) if k else None,
        popularity=_ranking(popularity, k) if k else None,
        note=str(skipped) if skipped else None,
    )


def recommender_runs(session: Session, *, tenant_id: int, limit: int) -> RecommenderRuns:
    """The latest runs, and which one's lists are served (the latest succeeded)."""
    runs = [
        _run_summary(row)
        for row in repo.recommender_runs(session, tenant_id=tenant_id, limit=limit)
    ]
    served = latest_succeeded(session, tenant_id=tenant_id)
    return RecommenderRuns(served=served, runs=runs)
