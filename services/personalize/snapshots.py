"""Placement snapshots: built from Postgres by the worker, the hot path's only view."""

from __future__ import annotations

from redis import Redis
from sqlmodel import Session, col, select

from services.personalize.cache import (
    Arm,
    CachedExperiment,
    CachedOffer,
    PlacementSnapshot,
    placement_key,
)
from services.personalize.policies import active_policy
from shared.models.personalize import Experiment, ExperimentStatus, Offer, Placement, PolicyRun


def build_snapshot(session: Session, placement: Placement, run: PolicyRun) -> PlacementSnapshot:
    offers = session.exec(
        select(Offer)
        .where(
            Offer.tenant_id == placement.tenant_id,
            col(Offer.retired_at).is_(None),
            col(Offer.placements).contains([placement.name]),
        )
        .order_by(col(Offer.offer_id))
    ).all()
    experiment = session.exec(
        select(Experiment).where(
            Experiment.tenant_id == placement.tenant_id,
            Experiment.placement == placement.name,
            Experiment.status == ExperimentStatus.RUNNING,
        )
    ).first()
    return PlacementSnapshot(
        tenant_id=placement.tenant_id,
        placement=placement.name,
        strategy=placement.strategy,
        algorithm=placement.algorithm,
        holdout_share=placement.holdout_share,
        exploration=placement.exploration,
        default_offer_id=placement.default_offer_id,
        offers=tuple(
            CachedOffer(
                offer_id=o.offer_id,
                name=o.name,
                kind=o.kind,
                discount_code=o.discount_code,
                segments=tuple(o.segments) if o.segments else None,
                starts_at=o.starts_at,
                ends_at=o.ends_at,
                max_per_day=o.max_impressions_per_customer_per_day,
            )
            for o in offers
        ),
        policy_run_id=run.id,
        policy_version=run.version,
        policy=run.state,
        experiment=None
        if experiment is None or experiment.id is None
        else CachedExperiment(
            experiment_id=experiment.id,
            arms=tuple(Arm.model_validate(a) for a in experiment.arms),
        ),
    )


def publish(session: Session, redis: Redis, *, tenant_id: int, placement: str) -> None:
    """Rebuild the placement's snapshot in Redis from what ``session`` sees."""
    row = session.exec(
        select(Placement).where(Placement.tenant_id == tenant_id, Placement.name == placement)
    ).first()
    if row is None:
        redis.delete(placement_key(tenant_id, placement))
        return
    run, _ = active_policy(session, tenant_id=tenant_id, placement=placement, lock=False)
    snapshot = build_snapshot(session, row, run)
    redis.set(placement_key(tenant_id, placement), snapshot.model_dump_json())
