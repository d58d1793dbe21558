"""Simulated journeys in which every channel's true contribution is known, to check the
attribution models against. Two worlds, each with its own meaning of "contribution":

* lift (`simulate_lift`): a journey meets each channel independently with the channel's
  ``reach``; meeting it adds ``lift`` to the probability of converting (on top of
  ``base_rate``), so a channel's true contribution is its lift times the journeys it
  reached: the conversions that would not have happened had those journeys not met it.
  Where touches fall is set by the channel's ``position`` (smaller is earlier), with
  noise: a channel that always comes last (the visit to the shop just before buying)
  collects every last touch whatever its lift.
* funnel (`simulate_funnel`): a journey is a walk from channel to channel that ends in an
  order or a drop-out, by a known transition table; blocking a channel (a journey that
  would go there drops out instead) loses exactly the conversions whose path went
  through it, which is its true contribution. The shop visit converts most often and is
  last most often, but is reached from the other channels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from services.segment.attribution.models import Journey


@dataclass(frozen=True)
class SimulatedChannel:
    name: str
    reach: float
    lift: float
    position: float


@dataclass(frozen=True)
class Simulated:
    journeys: list[Journey]
    truth: dict[str, float]  # true incremental conversions per channel


# Same reach, lifts in a known order; the channel with no effect always comes last.
POSITION_BIAS: Final = (
    SimulatedChannel("ads", reach=0.45, lift=0.10, position=0.0),
    SimulatedChannel("email", reach=0.45, lift=0.07, position=1.0),
    SimulatedChannel("app", reach=0.45, lift=0.04, position=2.0),
    SimulatedChannel("store", reach=0.45, lift=0.02, position=3.0),
    SimulatedChannel("web", reach=0.45, lift=0.0, position=4.0),
)
# Reach differs: a channel met by most journeys with a small lift against a rare one with
# a large lift (the case where counting the paths a channel is on misleads).
REACH_BIAS: Final = (
    SimulatedChannel("ads", reach=0.85, lift=0.01, position=0.0),
    SimulatedChannel("email", reach=0.25, lift=0.12, position=1.5),
    SimulatedChannel("app", reach=0.45, lift=0.05, position=1.5),
    SimulatedChannel("store", reach=0.2, lift=0.03, position=1.5),
    SimulatedChannel("web", reach=0.45, lift=0.0, position=4.0),
)
# Reach and lift in the same order (the channels met most also work best), the shop
# visit last: here a first-order Markov chain, which sees how many converting paths a
# channel is on rather than what it adds, ranks channels right as well.
ALIGNED: Final = (
    SimulatedChannel("ads", reach=0.6, lift=0.10, position=0.0),
    SimulatedChannel("email", reach=0.5, lift=0.07, position=1.0),
    SimulatedChannel("app", reach=0.4, lift=0.04, position=2.0),
    SimulatedChannel("store", reach=0.3, lift=0.02, position=3.0),
    SimulatedChannel("web", reach=0.25, lift=0.0, position=4.0),
)
SCENARIOS: Final = {"position_bias": POSITION_BIAS, "reach_bias": REACH_BIAS, "aligned": ALIGNED}


def simulate_lift(
    channels: Sequence[SimulatedChannel],
    *,
    journeys: int,
    seed: int,
    base_rate: float = 0.02,
    max_touches: int = 3,
) -> Simulated:
    rng = np.random.default_rng(seed)
    reach = np.array([c.reach for c in channels])
    lift = np.array([c.lift for c in channels])
    met = rng.random((journeys, len(channels))) < reach
    met = met[met.any(axis=1)]  # a journey has at least one touch
    converts = rng.random(len(met)) < base_rate + met @ lift
    values = rng.lognormal(mean=4.0, sigma=0.5, size=len(met))
    out = []
    for row, did, value in zip(met, converts, values, strict=True):
        touches = [
            (channels[int(i)].position + rng.normal(0, 0.75), channels[int(i)].name)
            for i in np.flatnonzero(row)
            for _ in range(rng.integers(1, max_touches + 1))
        ]
        path = tuple(name for _, name in sorted(touches))
        out.append(Journey(path, bool(did), float(value) if did else 0.0))
    truth = {c.name: float(c.lift * met[:, i].sum()) for i, c in enumerate(channels)}
    return Simulated(journeys=out, truth=truth)


FUNNEL_CHANNELS: Final = ("ads", "email", "app", "store", "web")
FUNNEL_START: Final = (0.55, 0.25, 0.1, 0.1, 0.0)
# From each channel (rows, in FUNNEL_CHANNELS order) to each channel, then to an order,
# then to dropping out.
FUNNEL_STEPS: Final = (
    (0.0, 0.25, 0.15, 0.05, 0.15, 0.0, 0.40),
    (0.0, 0.0, 0.15, 0.05, 0.30, 0.08, 0.42),
    (0.0, 0.1, 0.0, 0.05, 0.25, 0.12, 0.48),
    (0.0, 0.05, 0.05, 0.0, 0.05, 0.25, 0.60),
    (0.0, 0.05, 0.05, 0.0, 0.0, 0.30, 0.60),
)


def simulate_funnel(*, journeys: int, seed: int) -> Simulated:
    rng = np.random.default_rng(seed)
    steps = np.array(FUNNEL_STEPS)
    k = len(FUNNEL_CHANNELS)
    out = []
    for _ in range(journeys):
        at = int(rng.choice(k, p=FUNNEL_START))
        path = [at]
        while (step := int(rng.choice(k + 2, p=steps[at]))) < k:
            path.append(step)
            at = step
        converted = step == k
        value = float(rng.lognormal(mean=4.0, sigma=0.5)) if converted else 0.0
        out.append(Journey(tuple(FUNNEL_CHANNELS[i] for i in path), converted, value))
    truth = {
        name: float(sum(1 for j in out if j.converted and name in j.path))
        for name in FUNNEL_CHANNELS
    }
    return Simulated(journeys=out, truth=truth)


def ranking(scores: dict[str, float]) -> list[str]:
    """Channels from the largest score to the smallest (ties by name)."""
    return sorted(scores, key=lambda name: (-scores[name], name))
