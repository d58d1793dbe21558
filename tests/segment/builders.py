"""Test data for the segment API: rows as the training and scoring tasks would leave them.

Small builders (``create_customer(session, tenant_id=..., **overrides)``) and one scene,
``build_segmented_shop``: customers split into four segments by an active run, with a
previous run, scores, features, sentiment and membership history.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from services.segment.features.registry import MODEL_FEATURES, get_feature_set
from shared.models import Customer
from shared.models.segments import (
    CustomerFeatures,
    CustomerScore,
    MembershipHistory,
    Segment,
    SegmentationRun,
    SegmentMembership,
)
from shared.models.texts import TextAnalysis

FEATURE_NAMES = get_feature_set("v1").names  # the stored features, then the scores
STORED_WIDTH = get_feature_set("v1").stored_width
# What a trained run records: the subset it segmented on, not the vector's names.
RUN_FEATURES = MODEL_FEATURES["v1"]
NOW = datetime.now(UTC)


def create_customer(session: Session, *, tenant_id: int, **overrides: Any) -> Customer:
    values: dict[str, Any] = {"customer_id": f"c-{random.randrange(10**9):09d}"} | overrides
    customer = Customer(tenant_id=tenant_id, **values)
    session.add(customer)
    session.flush()
    return customer


def create_run(session: Session, *, tenant_id: int, **overrides: Any) -> SegmentationRun:
    """A succeeded, inactive k-means run unless told otherwise."""
    values: dict[str, Any] = {
        "status": "succeeded",
        "algorithm": "kmeans",
        "feature_set": "v1",
        "params": {"algorithm": "kmeans", "k": "auto", "feature_set": "v1", "seed": 7},
        "seed": 7,
        "progress": 1.0,
        "metrics": {"silhouette": 0.41, "calinski_harabasz": 812.0, "davies_bouldin": 0.92},
        "artifact": {"feature_names": RUN_FEATURES},
        "library_versions": {"python": "3.11", "scikit-learn": "1.5"},
        "data_window": {"start": "2025-01-01", "end": "2026-01-01"},
        "started_at": NOW - timedelta(minutes=5),
        "finished_at": NOW - timedelta(minutes=1),
    } | overrides
    run = SegmentationRun(tenant_id=tenant_id, **values)
    session.add(run)
    session.flush()
    return run


def create_segment(session: Session, *, tenant_id: int, run_id: int, **overrides: Any) -> Segment:
    values: dict[str, Any] = {"key": "s1", "name": "Everyone", "size": 0} | overrides
    segment = Segment(tenant_id=tenant_id, run_id=run_id, **values)
    session.add(segment)
    session.flush()
    return segment


def add_membership(
    session: Session, *, tenant_id: int, customer_pk: int, run_id: int, key: str, **extra: Any
) -> None:
    values: dict[str, Any] = {"since": NOW - timedelta(days=3), "reason": None} | extra
    session.add(
        SegmentMembership(
            tenant_id=tenant_id, customer_pk=customer_pk, run_id=run_id, segment_key=key, **values
        )
    )


def add_history(session: Session, *, tenant_id: int, customer_pk: int, **values: Any) -> None:
    session.add(MembershipHistory(tenant_id=tenant_id, customer_pk=customer_pk, **values))


def add_score(session: Session, *, tenant_id: int, customer_pk: int, **values: Any) -> None:
    session.add(CustomerScore(tenant_id=tenant_id, customer_pk=customer_pk, **values))


def add_features(
    session: Session, *, tenant_id: int, customer_pk: int, values: list[float], **extra: Any
) -> None:
    row: dict[str, Any] = {"feature_set": "v1", "as_of": NOW} | extra
    session.add(
        CustomerFeatures(tenant_id=tenant_id, customer_pk=customer_pk, feature_values=values, **row)
    )


def add_analysis(
    session: Session, *, tenant_id: int, customer_pk: int, source_pk: int, **values: Any
) -> None:
    row: dict[str, Any] = {
        "source_kind": "review",
        "model_version": "test-model",
        "backend": "test",
        "status": "ok",
        "label": "positive",
        "score": 0.5,
        "occurred_at": NOW,
    } | values
    session.add(
        TextAnalysis(tenant_id=tenant_id, customer_pk=customer_pk, source_pk=source_pk, **row)
    )


@dataclass(frozen=True)
class SegmentSpec:
    key: str
    name: str
    centre: tuple[float, float]
    clv: float
    lifts: dict[str, float]
    rule: str
    fidelity: float


SEGMENTS = (
    SegmentSpec(
        "s1",
        "Loyal big spenders",
        (3.0, 2.0),
        1800.0,
        {"monetary": 2.1, "frequency": 1.8, "recency_days": -1.1, "tenure_days": 0.9},
        "frequency > 6 and recency_days <= 45",
        0.91,
    ),
    SegmentSpec(
        "s2",
        "New browsers",
        (-2.5, 1.5),
        240.0,
        {"sessions_90d": 1.5, "tenure_days": -1.4, "frequency": -0.8, "searches_90d": 1.2},
        "tenure_days <= 60 and sessions_90d > 4",
        0.84,
    ),
    SegmentSpec(
        "s3",
        "At-risk regulars",
        (0.5, -2.5),
        620.0,
        {"recency_days": 1.9, "review_negative_share": 1.3, "support_contacts_per_30d": 1.1},
        "recency_days > 120 and monetary > 800",
        0.77,
    ),
    SegmentSpec(
        "s4",
        "Bargain hunters",
        (-1.0, -0.5),
        310.0,
        {"discount_share": 2.3, "avg_order_value": -0.9, "email_click_rate_90d": 0.7},
        "discount_share > 0.5",
        0.88,
    ),
)


@dataclass
class Shop:
    """What ``build_segmented_shop`` made, for assertions."""

    tenant_id: int
    run_id: int
    previous_run_id: int
    members: dict[str, list[str]] = field(default_factory=dict)  # key → customer ids
    customer_pks: dict[str, int] = field(default_factory=dict)  # customer id → pk


def _sizes(customers: int) -> list[int]:
    weights = (0.4, 0.3, 0.2, 0.1)
    sizes = [max(1, round(customers * w)) for w in weights]
    sizes[0] += customers - sum(sizes)
    return sizes


def _profile(spec: SegmentSpec, share: float) -> dict[str, Any]:
    features = [
        {"name": name, "mean": 10.0 + lift, "population_mean": 10.0, "lift": lift}
        for name, lift in spec.lifts.items()
    ]
    return {"share": share, "features": features}


def dendrogram_of(points: list[list[Any]], leaves: int = 16) -> dict[str, Any]:
    """What scipy draws for an agglomerative fit of the map's points (truncated)."""
    from scipy.cluster.hierarchy import dendrogram, linkage  # type: ignore[import-untyped]

    tree = linkage([[p[0], p[1]] for p in points], method="ward")
    drawn = dendrogram(tree, truncate_mode="lastp", p=leaves, no_plot=True)
    return {"icoord": drawn["icoord"], "dcoord": drawn["dcoord"], "labels": drawn["ivl"]}


def build_segmented_shop(
    session: Session, *, tenant_id: int, customers: int = 40, algorithm: str = "kmeans"
) -> Shop:
    """An active run of four segments over ``customers`` customers, and a previous run.

    An agglomerative run also stores a dendrogram.
    """
    rng = random.Random(tenant_id)
    sizes = _sizes(customers)
    value = [size * spec.clv for spec, size in zip(SEGMENTS, sizes, strict=True)]
    revenue = [
        v * (1.3 if spec.key == "s1" else 0.9) for v, spec in zip(value, SEGMENTS, strict=True)
    ]
    previous = create_run(session, tenant_id=tenant_id, finished_at=NOW - timedelta(days=7))
    k_curve = [
        {"k": k, "silhouette": s, "calinski_harabasz": c, "davies_bouldin": d}
        for k, s, c, d in [
            (2, 0.31, 500, 1.3),
            (3, 0.36, 640, 1.1),
            (4, 0.41, 812, 0.92),
            (5, 0.37, 760, 1.05),
            (6, 0.33, 700, 1.2),
        ]
    ]
    points = [
        [rng.gauss(spec.centre[0], 0.8), rng.gauss(spec.centre[1], 0.8), spec.key]
        for spec, size in zip(SEGMENTS, sizes, strict=True)
        for _ in range(size)
    ]
    assert previous.id is not None
    artifact: dict[str, Any] = {
        "feature_names": RUN_FEATURES,
        "projection": {"method": "pca", "points": points},
    }
    if algorithm == "agglomerative":
        artifact["dendrogram"] = dendrogram_of(points)
    run = create_run(
        session,
        tenant_id=tenant_id,
        algorithm=algorithm,
        active=True,
        activated_at=NOW - timedelta(minutes=1),
        metrics={
            "silhouette": 0.41,
            "calinski_harabasz": 812.0,
            "davies_bouldin": 0.92,
            "k_curve": k_curve,
            "surrogate_fidelity": 0.86,
            "ari_previous": 0.78,
            "previous_run_id": previous.id,
        },
        artifact=artifact,
    )
    assert run.id is not None
    shop = Shop(tenant_id=tenant_id, run_id=run.id, previous_run_id=previous.id)
    number = 0
    for i, (spec, size) in enumerate(zip(SEGMENTS, sizes, strict=True)):
        share = size / customers
        stats = {
            "revenue_share": revenue[i] / sum(revenue),
            "clv_share": value[i] / sum(value),
            "mean_clv": spec.clv,
            "jaccard_previous": round(0.6 + rng.random() * 0.35, 2),
        }
        create_segment(
            session,
            tenant_id=tenant_id,
            run_id=run.id,
            key=spec.key,
            name=spec.name,
            size=size,
            description=f"{size} customers ({share:.0%} of all)",
            profile=_profile(spec, share),
            rules={"text": spec.rule, "fidelity": spec.fidelity},
            stats=stats,
        )
        create_segment(
            session,
            tenant_id=tenant_id,
            run_id=previous.id,
            key=spec.key,
            name=spec.name,
            size=max(1, size + rng.randint(-3, 3)),
        )
        shop.members[spec.key] = []
        for _ in range(size):
            number += 1
            customer = create_customer(session, tenant_id=tenant_id, customer_id=f"c-{number:04d}")
            assert customer.id is not None
            pk = customer.id
            shop.members[spec.key].append(customer.customer_id)
            shop.customer_pks[customer.customer_id] = pk
            add_membership(
                session,
                tenant_id=tenant_id,
                customer_pk=pk,
                run_id=run.id,
                key=spec.key,
                reason={"rule": spec.rule, "distance": round(rng.random(), 3)},
            )
            add_history(
                session,
                tenant_id=tenant_id,
                customer_pk=pk,
                run_id=run.id,
                from_key=None,
                to_key=spec.key,
                changed_at=NOW - timedelta(days=rng.randint(0, 20)),
                reason={"cause": "retrain"},
            )
            add_score(
                session,
                tenant_id=tenant_id,
                customer_pk=pk,
                clv=round(spec.clv * rng.lognormvariate(0, 0.5), 2),
                p_alive=rng.random(),
                expected_purchases=rng.random() * 5,
                churn=rng.random(),
                anomaly=rng.random(),
            )
            add_features(
                session,
                tenant_id=tenant_id,
                customer_pk=pk,
                values=[round(rng.random() * 10, 3) for _ in range(STORED_WIDTH)],
            )
    session.flush()
    return shop
