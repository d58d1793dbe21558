"""A shop's decision log for the dashboard tests, seeded straight into Postgres.

A week of a bandit shifting traffic towards each segment's best offer, a holdout, an
experiment for the last two days, and the conversions, all drawn from known rates.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from redis import Redis
from sqlalchemy import Engine
from sqlmodel import Session

from services.personalize.cache import recs_key, subject_hash
from services.personalize.modeling.bandit import SegmentThompson
from shared.auth import create_api_key
from shared.db import session_scope
from shared.models.personalize import (
    Decision,
    Experiment,
    ExperimentStatus,
    Feedback,
    Offer,
    Placement,
    PolicyRun,
)
from shared.models.recommend import RecommenderRun
from shared.runs import RunStatus
from tests.segment.builders import create_run, create_segment
from tests.support.http import tenant_of
from tests.support.servers import start_api

OFFERS = {"ten_off": "10% off", "free_ship": "Free shipping", "new_in": "New arrivals"}
# True conversion rates per segment; None: customers without a segment.
RATES = {
    "vip": {"ten_off": 0.03, "free_ship": 0.06, "new_in": 0.2},
    "bargain": {"ten_off": 0.25, "free_ship": 0.06, "new_in": 0.02},
    None: {"ten_off": 0.05, "free_ship": 0.05, "new_in": 0.05},
}
BEST = {"vip": "new_in", "bargain": "ten_off", None: "free_ship"}
SEGMENT_NAMES = {"vip": "Loyal big spenders", "bargain": "Bargain hunters"}
DAYS, PER_HOUR, CUSTOMERS = 7, 12, 300


@dataclass
class Seeded:
    tenant_id: int
    experiment_id: int
    exposures: dict[str, int]  # offer → decisions showing it
    conversions: dict[str, int]


def _decision(tenant_id: int, at: datetime, customer: int, **values: Any) -> Decision:
    return Decision(
        decision_id=uuid.uuid4().hex,
        tenant_id=tenant_id,
        subject_hash=f"subject-{customer:04d}",
        placement="home",
        created_at=at,
        **values,
    )


def seed_shop(session: Session, tenant_id: int) -> Seeded:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rng = np.random.default_rng(7)
    run = create_run(session, tenant_id=tenant_id, active=True, activated_at=now)
    assert run.id is not None
    for key, name in SEGMENT_NAMES.items():
        create_segment(session, tenant_id=tenant_id, run_id=run.id, key=key, name=name)
    for offer_id, name in OFFERS.items():
        session.add(
            Offer(
                tenant_id=tenant_id,
                offer_id=offer_id,
                name=name,
                kind="discount",
                placements=["home"],
            )
        )
    session.add(Placement(tenant_id=tenant_id, name="home", default_offer_id="ten_off"))
    session.add(
        PolicyRun(
            tenant_id=tenant_id,
            placement="home",
            version=42,
            active=True,
            status=RunStatus.RUNNING,
            algorithm="thompson",
            state=SegmentThompson().fit().to_dict(),
        )
    )
    started = now - timedelta(days=2)
    arms = [
        {"name": "control", "strategy": "static", "share": 0.5},
        {"name": "bandit", "strategy": "bandit", "share": 0.5},
    ]
    experiment = Experiment(
        tenant_id=tenant_id,
        name="bandit vs 10% off",
        placement="home",
        arms=arms,
        status=ExperimentStatus.RUNNING,
        started_at=started,
    )
    session.add(experiment)
    session.flush()
    assert experiment.id is not None
    seeded = Seeded(tenant_id, experiment.id, dict.fromkeys(OFFERS, 0), dict.fromkeys(OFFERS, 0))
    segments = [None, "vip", "bargain"]
    decisions, feedback = [], []
    for hour in range(DAYS * 24):
        at = now - timedelta(hours=DAYS * 24 - hour)
        learnt = hour / (DAYS * 24)  # the bandit's confidence grows over the week
        for _ in range(PER_HOUR):
            customer = int(rng.integers(CUSTOMERS))
            segment = segments[customer % 3]
            arm = None if at < started else ("control" if customer % 2 else "bandit")
            extra = {"experiment_id": experiment.id, "arm": arm} if arm else {}
            if rng.random() < 0.05 and not arm:
                decisions.append(
                    _decision(
                        tenant_id,
                        at,
                        customer,
                        strategy="holdout",
                        offers=[{"offer_id": "ten_off", "rank": 0, "propensity": 1.0}],
                        eligible=["ten_off"],
                        personalised=False,
                    )
                )
                seeded.exposures["ten_off"] += 1
                continue
            if arm == "control":
                offer, p, strategy = "ten_off", 1.0, "static"
            else:
                share = 1 / 3 + (0.8 - 1 / 3) * learnt
                others = [o for o in OFFERS if o != BEST[segment]]
                offer = BEST[segment] if rng.random() < share else others[int(rng.integers(2))]
                p, strategy = share if offer == BEST[segment] else (1 - share) / 2, "bandit"
            decision = _decision(
                tenant_id,
                at,
                customer,
                strategy=strategy,
                segment_key=segment,
                offers=[{"offer_id": offer, "rank": 0, "propensity": p}],
                eligible=list(OFFERS),
                policy_version=hour,
                **extra,
            )
            decisions.append(decision)
            seeded.exposures[offer] += 1
            if rng.random() < RATES[segment][offer]:
                seeded.conversions[offer] += 1
                feedback.append(
                    Feedback(
                        tenant_id=tenant_id,
                        event_id=uuid.uuid4().hex,
                        decision_id=decision.decision_id,
                        subject_hash=decision.subject_hash,
                        offer_id=offer,
                        kind="conversion",
                        value=30.0,
                        occurred_at=at,
                        applied_at=at,
                    )
                )
    session.add_all(decisions)
    session.add_all(feedback)
    return seeded


# The recommender card's runs, oldest first; ``served`` is the latest succeeded.
RECOMMENDER_FIGURES = {
    "older": (0.081, 0.2034, 0.052, 0.121),  # precision, NDCG; popularity's precision, NDCG
    "served": (0.094, 0.2311, 0.05, 0.12),
}
# One customer's served list: a product id and a reason that would be markup if the page
# ever set them as HTML.
RECOMMENDED_CUSTOMER = "c-7"
RECOMMENDED_ITEMS = [
    {
        "product_id": "<img src=x id=injected>",
        "score": 0.91,
        "reason": "bought together with <b>Tent</b>",
    },
    {"product_id": "stove", "score": 0.5, "reason": "popular in your segment"},
]


def seed_recommender(session: Session, tenant_id: int) -> dict[str, int]:
    """Two succeeded runs with their offline figures, a failed one and one running."""
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    for n, (name, (precision, ndcg, pop_precision, pop_ndcg)) in enumerate(
        RECOMMENDER_FIGURES.items()
    ):
        run = RecommenderRun(
            tenant_id=tenant_id,
            status=RunStatus.SUCCEEDED,
            progress=1.0,
            data_window={"customers": CUSTOMERS},
            metrics={
                "evaluation": {
                    "k": 10,
                    "test_users": 120 + n,
                    "precision_at_10": precision,
                    "ndcg_at_10": ndcg,
                },
                "baselines": {
                    "popularity": {"precision_at_10": pop_precision, "ndcg_at_10": pop_ndcg}
                },
            },
            created_at=now - timedelta(days=3 - n),
            finished_at=now - timedelta(days=3 - n) + timedelta(minutes=2),
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        ids[name] = run.id
    failed = RecommenderRun(
        tenant_id=tenant_id,
        status=RunStatus.FAILED,
        progress=0.05,
        error="no purchases to learn from",
        finished_at=now - timedelta(hours=1),
    )
    running = RecommenderRun(tenant_id=tenant_id, status=RunStatus.RUNNING, progress=0.4)
    for name, run in (("failed", failed), ("running", running)):
        session.add(run)
        session.flush()
        assert run.id is not None
        ids[name] = run.id
    return ids


@dataclass(frozen=True)
class Dashboard:
    base: str  # the personalize API's URL
    key: str  # an admin key of the seeded tenant
    seeded: Seeded
    recommender_runs: dict[str, int]


def serve_seeded_dashboard(
    env: dict[str, str], engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """The personalize API as a real process, and one seeded tenant (seeding takes seconds:
    a module's tests share it)."""
    tenant = f"pdash-{uuid.uuid4().hex[:12]}"
    with session_scope(engine) as session:
        key = create_api_key(session, client="test", scopes=["admin"], tenant=tenant).key
    tenant_id = tenant_of(engine, key)
    with session_scope(engine) as session:
        seeded = seed_shop(session, tenant_id)
    with session_scope(engine) as session:
        runs = seed_recommender(session, tenant_id)
    served = {"v": runs["served"], "items": RECOMMENDED_ITEMS}
    subject = subject_hash(env["SEGMENTA_SECRET_KEY"], RECOMMENDED_CUSTOMER)
    with Redis.from_url(env["SEGMENTA_REDIS_URL"]) as redis:
        redis.set(recs_key(tenant_id, subject), json.dumps(served))
    process, base = start_api(
        env, tmp_path_factory.mktemp("pdash") / "api.log", app="services.personalize.main:app"
    )
    yield Dashboard(base=base, key=key, seeded=seeded, recommender_runs=runs)
    process.stop()
