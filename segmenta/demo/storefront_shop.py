"""A shop to simulate in and a whole simulation run (see ``segmenta.demo.storefront``):
offers and placements through the personalize API, customers through the ingest API,
the segmentation the behaviour types would yield, then visits, the drained decision log
and the off-policy estimate of the uniform policy."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine, text
from sqlmodel import Session

from segmenta.demo.storefront import Population, Storefront, Tally, Tastes, wait_until
from shared.contracts import PERSONALIZE_REFRESH_SEGMENTATION
from shared.models.segments import Segment, SegmentationRun, SegmentMembership
from shared.outbox import enqueue
from shared.runs import RunStatus


def ingest_customers(ingest: httpx.Client, key: str, population: Population) -> None:
    """The customers, with marketing consent, through ``POST /v1/customers``."""
    headers = {"Authorization": f"Bearer {key}"}
    ids = population.customer_ids
    for start in range(0, len(ids), 1_000):
        body = [
            {"customer_id": c, "consent": {"marketing": True}} for c in ids[start : start + 1_000]
        ]
        answer = ingest.post("/v1/customers", json=body, headers=headers)
        answer.raise_for_status()
        if answer.json()["rejected_count"]:
            raise RuntimeError(f"customers rejected: {answer.text[:300]}")


def label_segments(engine: Engine, tenant_id: int, population: Population) -> int:
    """Store the segmentation a training run recovering the types would leave (see the
    module's docstring) and queue personalize's cache refresh; the run's id."""
    now = datetime.now(UTC)
    with Session(engine) as session:
        rows = session.execute(
            text("SELECT customer_id, id FROM customer WHERE tenant_id = :t"), {"t": tenant_id}
        )
        pks: dict[str, int] = {str(c): int(pk) for c, pk in rows}
        run = SegmentationRun(
            tenant_id=tenant_id,
            status=RunStatus.SUCCEEDED,
            algorithm="simulated",
            feature_set="v1",
            params={"simulated": True},
            active=True,
            progress=1.0,
            started_at=now,
            finished_at=now,
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        for key in sorted(set(population.segments)):
            size = population.segments.count(key)
            session.add(Segment(tenant_id=tenant_id, run_id=run.id, key=key, name=key, size=size))
        for customer_id, key in zip(population.customer_ids, population.segments, strict=True):
            session.add(
                SegmentMembership(
                    tenant_id=tenant_id,
                    customer_pk=pks[customer_id],
                    run_id=run.id,
                    segment_key=key,
                    since=now,
                )
            )
        enqueue(
            session,
            tenant_id=tenant_id,
            task_name=PERSONALIZE_REFRESH_SEGMENTATION,
            subject_ids=[run.id],
        )
        session.commit()
        return run.id


def configure(
    personalize: httpx.Client, admin_key: str, tastes: Tastes, placements: dict[str, dict[str, Any]]
) -> None:
    """The tastes' offers, shown at every placement, and each placement's settings."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    for offer_id, value in zip(tastes.offers, tastes.values, strict=True):
        body = {
            "offer_id": offer_id,
            "name": f"Offer {offer_id}",
            "kind": "discount",
            "value": float(value),
            "placements": sorted(placements),
        }
        personalize.post("/v1/offers", json=body, headers=headers).raise_for_status()
    for name, settings in placements.items():
        personalize.put(f"/v1/placements/{name}", json=settings, headers=headers).raise_for_status()


def wait_serving(storefront: Storefront, strategies: dict[str, str], timeout: float = 120) -> None:
    """Until every placement answers with its strategy and a sample of customers with
    their segments (the worker has cached the segmentation)."""
    sample = range(
        0,
        len(storefront.population.customer_ids),
        max(1, len(storefront.population.customer_ids) // 25),
    )

    def ready() -> bool:
        for placement, strategy in strategies.items():
            for customer in sample:
                try:
                    answer = storefront.ask(0, customer, placement)
                except httpx.HTTPStatusError:  # 404 until the placement is published
                    return False
                if answer["strategy"] != strategy or len(answer["offers"]) != 1:
                    return False
                if (
                    strategy == "bandit"
                    and answer["segment"] != storefront.population.segments[customer]
                ):
                    return False
        return True

    wait_until(ready, timeout, "the placements and segments to be served")


@dataclass(frozen=True)
class Shop:
    """A tenant to simulate in: the APIs, its keys and a database engine."""

    personalize_url: str
    ingest_url: str
    admin_key: str  # admin (offers, placements, evaluation)
    storefront_key: str  # offers:read, feedback:write
    ingest_key: str  # ingest:write
    tenant_id: int
    engine: Engine


def placement_settings(
    tastes: Tastes, strategy: str, exploration: float | None = None
) -> dict[str, Any]:
    """No holdout: every visit is decided by the strategy compared. ``exploration``: the
    bandit's uniformly drawn share (the placement's default when None)."""
    settings: dict[str, Any] = {"strategy": strategy, "holdout_share": 0}
    if strategy == "static":
        settings["default_offer_id"] = tastes.best_static()
    if strategy == "bandit" and exploration is not None:
        settings["exploration"] = exploration
    return settings


def prepare(
    shop: Shop,
    tastes: Tastes,
    population: Population,
    strategies: dict[str, str],
    exploration: float | None = None,
) -> None:
    """Offers, placements, customers and their segments, until they are served."""
    with httpx.Client(base_url=shop.personalize_url, timeout=30) as personalize:
        settings = {p: placement_settings(tastes, s, exploration) for p, s in strategies.items()}
        configure(personalize, shop.admin_key, tastes, settings)
    with httpx.Client(base_url=shop.ingest_url, timeout=60) as ingest:
        ingest_customers(ingest, shop.ingest_key, population)
    label_segments(shop.engine, shop.tenant_id, population)


def logged_since(engine: Engine, tenant_id: int, since: datetime) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM decision WHERE tenant_id = :t AND created_at >= :s"),
                {"t": tenant_id, "s": since},
            ).scalar_one()
        )


def evaluate_uniform(shop: Shop, placement: str, since: datetime) -> dict[str, Any]:
    """``GET /v1/placements/{placement}/evaluation?target=uniform`` over the visits."""
    with httpx.Client(base_url=shop.personalize_url, timeout=120) as personalize:
        answer = personalize.get(
            f"/v1/placements/{placement}/evaluation",
            params={"target": "uniform", "since": since.isoformat()},
            headers={"Authorization": f"Bearer {shop.admin_key}"},
        )
    answer.raise_for_status()
    return dict(answer.json())


_LAGS = text(
    """
    SELECT percentile_cont(ARRAY[0.5, 0.95, 1.0]) WITHIN GROUP (ORDER BY seconds), count(*)
    FROM (SELECT extract(epoch FROM logged_at - created_at) AS seconds FROM decision
          WHERE tenant_id = :t AND created_at >= :s) logged
    UNION ALL
    SELECT percentile_cont(ARRAY[0.5, 0.95, 1.0]) WITHIN GROUP (ORDER BY seconds),
           count(*) FILTER (WHERE seconds IS NULL)
    FROM (SELECT extract(epoch FROM applied_at - received_at) AS seconds FROM feedback
          WHERE tenant_id = :t AND received_at >= :s) learnt
    """
)


@dataclass(frozen=True)
class Lags:
    """How far behind the visits the platform was: answer -> decision stored, feedback
    received -> learnt by the policy (seconds: median, p95, max), and feedback unlearnt."""

    logged: tuple[float, float, float]
    learnt: tuple[float, float, float]
    unlearnt: int

    def describe(self) -> str:
        def three(q: tuple[float, float, float]) -> str:
            return " / ".join(f"{v:.2f}" for v in q)

        return (
            f"stored {three(self.logged)} s, learnt {three(self.learnt)} s "
            f"(median / p95 / max), {self.unlearnt} unlearnt"
        )


def lags(engine: Engine, tenant_id: int, since: datetime) -> Lags:
    with engine.connect() as conn:
        (logged, _), (learnt, unlearnt) = conn.execute(_LAGS, {"t": tenant_id, "s": since}).all()

    def quantiles(q: list[float] | None) -> tuple[float, float, float]:
        a, b, c = q if q and None not in q else (float("nan"),) * 3  # no rows: NaN
        return float(a), float(b), float(c)

    return Lags(quantiles(logged), quantiles(learnt), int(unlearnt))


@dataclass
class Simulation:
    tally: Tally
    ope: dict[str, Any]
    since: datetime
    seconds: float
    lags: Lags


def simulate(
    shop: Shop,
    tastes: Tastes,
    population: Population,
    strategies: dict[str, str],
    visits: int,
    seed: int,
    evaluate: str | None = None,
    exploration: float | None = None,
) -> Simulation:
    """Prepare the shop, make ``visits`` visits, wait for the decision log to hold them
    all, and (``evaluate``: a placement) estimate the uniform policy from its log."""
    prepare(shop, tastes, population, strategies, exploration)
    store = Storefront(shop.personalize_url, shop.storefront_key, tastes, population, seed)
    try:
        wait_serving(store, strategies)
        since = datetime.now(UTC)
        started = time.monotonic()
        tally = store.visit(Tally(), visits, list(strategies))
        seconds = time.monotonic() - started
    finally:
        store.close()
    wait_until(
        lambda: logged_since(shop.engine, shop.tenant_id, since) >= tally.answers,
        120,
        "every decision in the log",
    )
    ope = evaluate_uniform(shop, evaluate, since) if evaluate else {}
    return Simulation(tally, ope, since, seconds, lags(shop.engine, shop.tenant_id, since))
