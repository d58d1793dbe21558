"""Experiments: one running per placement; the report is computed from the decision log."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, text
from sqlmodel import Session, select

from services.personalize.cache import Arm
from services.personalize.experiments.schemas import (
    ArmReport,
    Comparison,
    ExperimentCreate,
    ExperimentReport,
)
from services.personalize.modeling.experiments import (
    Moments,
    cuped,
    difference,
    sample_ratio_mismatch,
    sequential_test,
)
from services.personalize.offers.service import refresh_placements
from shared.models.personalize import Experiment, ExperimentStatus

PRE_PERIOD_DAYS = 90


class ExperimentDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    pass


class PlacementBusy(ValueError):  # noqa: N818 (a conflict, named for what the caller sees)
    """The placement already runs an experiment."""


def create_experiment(session: Session, *, tenant_id: int, body: ExperimentCreate) -> Experiment:
    running = session.exec(
        select(Experiment.id).where(
            Experiment.tenant_id == tenant_id,
            Experiment.placement == body.placement,
            Experiment.status == ExperimentStatus.RUNNING,
        )
    ).first()
    if running is not None:
        raise PlacementBusy(body.placement)
    experiment = Experiment(
        tenant_id=tenant_id,
        name=body.name,
        placement=body.placement,
        arms=[a.model_dump() for a in body.arms],
        metric=body.metric,
        status=ExperimentStatus.RUNNING,
    )
    session.add(experiment)
    session.flush()
    refresh_placements(session, tenant_id=tenant_id, names=[body.placement])
    return experiment


def read_experiment(session: Session, *, tenant_id: int, experiment_id: int) -> Experiment:
    experiment = session.exec(
        select(Experiment).where(Experiment.tenant_id == tenant_id, Experiment.id == experiment_id)
    ).first()
    if experiment is None:
        raise ExperimentDoesNotExist(experiment_id)
    return experiment


def stop_experiment(session: Session, *, tenant_id: int, experiment_id: int) -> Experiment:
    experiment = read_experiment(session, tenant_id=tenant_id, experiment_id=experiment_id)
    if experiment.status == ExperimentStatus.RUNNING:
        experiment.status = ExperimentStatus.STOPPED
        experiment.stopped_at = session.exec(select(func.now())).one()
        session.add(experiment)
        session.flush()
        refresh_placements(session, tenant_id=tenant_id, names=[experiment.placement])
    return experiment


# One row per exposed customer: arm, converted, revenue, and spend in the pre-period.
_UNITS = text(
    """
    WITH exposed AS (
        SELECT d.arm, d.subject_hash, max(d.customer_pk) AS customer_pk
        FROM decision d WHERE d.tenant_id = :t AND d.experiment_id = :e
        GROUP BY d.arm, d.subject_hash
    ), converted AS (
        SELECT d.subject_hash, count(*) AS conversions, coalesce(sum(f.value), 0) AS revenue
        FROM feedback f JOIN decision d ON d.decision_id = f.decision_id
        WHERE d.tenant_id = :t AND d.experiment_id = :e AND f.kind = 'conversion'
        GROUP BY d.subject_hash
    ), pre AS (
        SELECT o.customer_pk, sum(o.total)::float8 AS spend FROM orders o
        WHERE o.customer_pk IN (SELECT customer_pk FROM exposed)
          AND o.placed_at < :started AND o.placed_at >= :started - make_interval(days => :days)
        GROUP BY o.customer_pk
    )
    SELECT e.arm, coalesce(c.conversions, 0) > 0, coalesce(c.revenue, 0)::float8,
           coalesce(p.spend, 0)
    FROM exposed e
    LEFT JOIN converted c ON c.subject_hash = e.subject_hash
    LEFT JOIN pre p ON p.customer_pk = e.customer_pk
    """
)


@dataclass(frozen=True)
class Units:
    arm: np.ndarray
    converted: np.ndarray
    revenue: np.ndarray
    pre_spend: np.ndarray

    def metric(self, name: str) -> np.ndarray:
        return self.converted.astype(float) if name == "conversion" else self.revenue


def _units(session: Session, experiment: Experiment) -> Units:
    rows = session.execute(
        _UNITS,
        {
            "t": experiment.tenant_id,
            "e": experiment.id,
            "started": experiment.started_at,
            "days": PRE_PERIOD_DAYS,
        },
    ).all()
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return Units(*(np.asarray(c) for c in columns))


def experiment_report(session: Session, *, tenant_id: int, experiment_id: int) -> ExperimentReport:
    experiment = read_experiment(session, tenant_id=tenant_id, experiment_id=experiment_id)
    arms = [Arm.model_validate(a) for a in experiment.arms]
    units = _units(session, experiment)
    metric = units.metric(experiment.metric)
    adjusted, reduction = metric, None
    if len(metric) > 2:
        fitted = cuped(metric, units.pre_spend)
        adjusted, reduction = fitted.adjusted, fitted.variance_reduction
    reports = [_arm_report(arm, units) for arm in arms]
    control = arms[0].name
    comparisons = [
        _compare(arm.name, control, units.arm, metric, adjusted)
        for arm in arms[1:]
        if _enough(units.arm, arm.name) and _enough(units.arm, control)
    ]
    exposures = [r.exposures for r in reports]
    srm = sample_ratio_mismatch(exposures, [a.share for a in arms]) if sum(exposures) else None
    assert experiment.id is not None
    return ExperimentReport(
        experiment_id=experiment.id,
        name=experiment.name,
        placement=experiment.placement,
        metric=experiment.metric,
        status=experiment.status,
        started_at=experiment.started_at,
        stopped_at=experiment.stopped_at,
        arms=reports,
        comparisons=comparisons,
        sample_ratio_p_value=srm.p_value if srm else None,
        sample_ratio_mismatch=srm.mismatch if srm else False,
        cuped_variance_reduction=reduction,
    )


def _enough(arm_of: np.ndarray, arm: str) -> bool:
    return int((arm_of == arm).sum()) >= 2


def _arm_report(arm: Arm, units: Units) -> ArmReport:
    mine = units.arm == arm.name
    exposures = int(mine.sum())
    conversions = int(units.converted[mine].sum()) if exposures else 0
    return ArmReport(
        name=arm.name,
        strategy=arm.strategy,
        share=arm.share,
        exposures=exposures,
        conversions=conversions,
        conversion_rate=conversions / exposures if exposures else None,
        revenue=float(units.revenue[mine].sum()) if exposures else 0.0,
    )


def _compare(
    arm: str, control: str, arm_of: np.ndarray, metric: np.ndarray, adjusted: np.ndarray
) -> Comparison:
    raw_c, raw_t = Moments.of(metric[arm_of == control]), Moments.of(metric[arm_of == arm])
    fixed = difference(raw_c, raw_t)
    sequential = sequential_test(raw_c, raw_t)
    reduced = difference(
        Moments.of(adjusted[arm_of == control]), Moments.of(adjusted[arm_of == arm])
    )
    return Comparison(
        arm=arm,
        difference=fixed.estimate,
        ci_low=fixed.ci_low,
        ci_high=fixed.ci_high,
        p_value=fixed.p_value,
        sequential_p_value=sequential.p_value,
        sequential_ci_low=sequential.ci_low,
        sequential_ci_high=sequential.ci_high,
        significant=sequential.significant,
        cuped_difference=reduced.estimate,
        cuped_ci_low=reduced.ci_low,
        cuped_ci_high=reduced.ci_high,
    )
