"""A simulated storefront that visits the personalize API and reacts like its shoppers.

The population is made of behaviour types, each with its own taste: a known conversion
rate per (type, offer), generated from a seed (``Tastes.generate``) so that tests, the
demo and the benchmark can vary the tastes instead of fitting one table. Customers are
ingested through the real ingest API with marketing consent; their type is known only to
the simulator. Each visit asks the personalize API what to show at one or more
placements, draws a conversion with the shown offer's true rate (one uniform number per
visit, shared by every placement and the oracle, so they are compared on the same luck),
and conversions go back through ``POST /v1/feedback`` in batches.

Setting a shop up (offers, placements, customers, segments) and running a whole
simulation is ``segmenta.demo.storefront_shop``. Segments: the bandit's context is the
customer's segment. Training a segmentation that
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
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

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


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")
