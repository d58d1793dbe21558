"""A simulated storefront that visits the personalize API and reacts like its shoppers.

The population is made of behaviour types, each with its own taste: a known conversion
rate per (type, offer), generated from a seed (``Tastes.generate``) so that tests, the
demo and the benchmark can vary the tastes instead of fitting one table. Customers are
ingested through the real ingest API with marketing consent; their type is known only to
the simulator. Each visit asks the personalize API what to show at one or more
placements, draws a conversion with the shown offer's true rate (one uniform number per
visit, shared by every placement and the oracle, so they are compared on the same luck),
and conversions go back through ``POST /v1/feedback`` in batches.

Segments: the bandit's context is the customer's segment. Training a segmentation that
recovers the types takes minutes of segment-service work, so ``label_segments`` stores
the segmentation a perfect training run would leave (an active run, one segment per type,
a membership per customer; ``purity`` < 1 puts that share of customers in a random
segment) and queues the same ``personalize.refresh_segmentation`` work the segment
service queues on activation: from there on the personalize worker caches the segments
exactly as it does in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, text
from sqlmodel import Session

from shared.contracts import PERSONALIZE_REFRESH_SEGMENTATION
from shared.models.segments import Segment, SegmentationRun, SegmentMembership
from shared.outbox import enqueue
from shared.runs import RunStatus

FloatArray = NDArray[np.float64]
ORACLE = "oracle"
UNIFORM_TRUTH = "uniform (true)"  # every eligible offer equally likely, simulated locally


@dataclass(frozen=True)
class Tastes:
    """Conversion rates per (behaviour type, offer), the types' shares and order values."""

    offers: tuple[str, ...]
    rates: FloatArray  # types x offers
    shares: FloatArray
    values: FloatArray  # an order's value per offer

    @classmethod
    def generate(cls, seed: int, types: int = 4, offers: int = 6) -> Tastes:
        """Each type loves its own offer (12-25%), likes a runner-up (a third to two
        thirds of that) and barely reacts to the rest (1-5%)."""
        if not 1 <= types <= offers:
            raise ValueError("need at least one type and no more types than offers")
        rng = np.random.default_rng(seed)
        rates = rng.uniform(0.01, 0.05, size=(types, offers))
        favourites = rng.permutation(offers)[:types]
        best = rng.uniform(0.12, 0.25, size=types)
        for t in range(types):
            rates[t, favourites[t]] = best[t]
            runner = rng.choice([o for o in range(offers) if o != favourites[t]])
            rates[t, runner] = best[t] * rng.uniform(0.33, 0.67)
        shares = rng.dirichlet(np.full(types, 4.0))
        values = np.round(rng.uniform(20.0, 120.0, size=offers), 2)
        return cls(tuple(f"offer-{o + 1}" for o in range(offers)), rates, shares, values)

    @property
    def types(self) -> int:
        return int(self.rates.shape[0])

    def rate(self, kind: int, offer_id: str | None) -> float:
        return 0.0 if offer_id is None else float(self.rates[kind, self.offers.index(offer_id)])

    def expected(self) -> dict[str, float]:
        """True conversion per visit of the baselines, over the population's mix."""
        return {
            "uniform": float(self.shares @ self.rates.mean(axis=1)),
            "best static": float((self.shares @ self.rates).max()),
            ORACLE: float(self.shares @ self.rates.max(axis=1)),
        }

    def best_static(self) -> str:
        return self.offers[int(np.argmax(self.shares @ self.rates))]


@dataclass(frozen=True)
class Population:
    customer_ids: tuple[str, ...]
    kinds: NDArray[np.int64]  # behaviour type per customer: the simulator's secret
    segments: tuple[str, ...]  # segment key per customer (the type, unless impure)

    @classmethod
    def draw(
        cls, tastes: Tastes, size: int, seed: int, prefix: str = "sim", purity: float = 1.0
    ) -> Population:
        rng = np.random.default_rng(seed + 1_000_003)
        kinds = rng.choice(tastes.types, size=size, p=tastes.shares)
        # Segment keys say nothing of the type's number: a shuffled mapping.
        names = [f"s{i + 1}" for i in rng.permutation(tastes.types)]
        stray = rng.random(size) >= purity
        labels = np.where(stray, rng.integers(tastes.types, size=size), kinds)
        ids = tuple(f"{prefix}-{i:06d}" for i in range(size))
        return cls(ids, kinds, tuple(names[int(k)] for k in labels))


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


@dataclass
class Tally:
    """Per visit, for each placement and the oracle: converted (0/1) and the true rate."""

    converted: dict[str, list[int]] = field(default_factory=dict)
    expected: dict[str, list[float]] = field(default_factory=dict)
    rejected: int = 0
    answers: int = 0

    def add(self, name: str, converted: bool, rate: float) -> None:
        self.converted.setdefault(name, []).append(int(converted))
        self.expected.setdefault(name, []).append(rate)

    def rate(self, name: str, tail: float = 1.0, *, expected: bool = False) -> float:
        """Conversion per visit over the last ``tail`` share of the visits."""
        values = self.expected[name] if expected else self.converted[name]
        start = round(len(values) * (1 - tail))
        return float(np.mean(values[start:]))


class Storefront:
    """Visits the personalize API as shoppers of the given tastes would."""

    def __init__(
        self,
        base_url: str,
        key: str,
        tastes: Tastes,
        population: Population,
        seed: int,
        clients: int = 4,
    ) -> None:
        self.tastes, self.population = tastes, population
        self.rng = np.random.default_rng(seed + 7_919)
        headers = {"Authorization": f"Bearer {key}"}
        self.http = [
            httpx.Client(base_url=base_url, headers=headers, timeout=30) for _ in range(clients)
        ]
        self.pool = ThreadPoolExecutor(clients)

    def close(self) -> None:
        self.pool.shutdown()
        for client in self.http:
            client.close()

    def ask(self, index: int, customer: int, placement: str) -> dict[str, Any]:
        client = self.http[index % len(self.http)]
        answer = client.get(
            f"/v1/offers/{self.population.customer_ids[customer]}", params={"placement": placement}
        )
        answer.raise_for_status()
        return dict(answer.json())

    def visit(
        self,
        tally: Tally,
        visits: int,
        placements: Sequence[str],
        round_size: int = 50,
        on_round: Callable[[int], None] | None = None,
    ) -> Tally:
        """``visits`` visits, each asking every placement; feedback once per round."""
        done = 0
        while done < visits:
            size = min(round_size, visits - done)
            customers = self.rng.integers(len(self.population.customer_ids), size=size)
            luck = self.rng.random(size)
            jobs = [(i, int(c), p) for i, c in enumerate(customers) for p in placements]
            answers = list(self.pool.map(lambda job: self.ask(*job), jobs))
            tally.answers += len(answers)
            events = self._react(tally, customers, luck, placements, answers)
            if events:
                self._feedback(tally, events)
            done += size
            if on_round is not None:
                on_round(done)
        return tally

    def _react(
        self,
        tally: Tally,
        customers: NDArray[np.int64],
        luck: FloatArray,
        placements: Sequence[str],
        answers: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        events, tastes = [], self.tastes
        for i, customer in enumerate(customers):
            kind = int(self.population.kinds[customer])
            best, mean = float(tastes.rates[kind].max()), float(tastes.rates[kind].mean())
            tally.add(ORACLE, bool(luck[i] < best), best)
            tally.add(UNIFORM_TRUTH, bool(luck[i] < mean), mean)
            for j, placement in enumerate(placements):
                answer = answers[i * len(placements) + j]
                shown = answer["offers"][0]["offer_id"] if answer["offers"] else None
                rate = tastes.rate(kind, shown)
                converted = bool(luck[i] < rate)
                tally.add(placement, converted, rate)
                if converted:
                    value = float(tastes.values[tastes.offers.index(shown)])
                    events.append(
                        {
                            "decision_id": answer["decision_id"],
                            "offer_id": shown,
                            "kind": "conversion",
                            "value": value,
                        }
                    )
        return events

    def _feedback(self, tally: Tally, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), 2_500):
            answer = self.http[0].post("/v1/feedback", json=events[start : start + 2_500])
            answer.raise_for_status()
            tally.rejected += int(answer.json()["rejected_count"])


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


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


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


def placement_settings(tastes: Tastes, strategy: str) -> dict[str, Any]:
    """No holdout: every visit is decided by the strategy compared."""
    settings: dict[str, Any] = {"strategy": strategy, "holdout_share": 0}
    if strategy == "static":
        settings["default_offer_id"] = tastes.best_static()
    return settings


def prepare(shop: Shop, tastes: Tastes, population: Population, strategies: dict[str, str]) -> None:
    """Offers, placements, customers and their segments, until they are served."""
    with httpx.Client(base_url=shop.personalize_url, timeout=30) as personalize:
        settings = {p: placement_settings(tastes, s) for p, s in strategies.items()}
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


@dataclass
class Simulation:
    tally: Tally
    ope: dict[str, Any]
    since: datetime
    seconds: float


def simulate(
    shop: Shop,
    tastes: Tastes,
    population: Population,
    strategies: dict[str, str],
    visits: int,
    seed: int,
    evaluate: str | None = None,
) -> Simulation:
    """Prepare the shop, make ``visits`` visits, wait for the decision log to hold them
    all, and (``evaluate``: a placement) estimate the uniform policy from its log."""
    prepare(shop, tastes, population, strategies)
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
    return Simulation(tally, ope, since, seconds)
