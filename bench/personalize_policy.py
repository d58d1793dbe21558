"""Decision cost of the personalize policies: ``python -m bench.personalize_policy``.

One decision for ~20 eligible offers must cost well under a millisecond. Each row is the
median over ``--repeats`` runs of the time per call, a run being ``--calls`` calls; the
raw baseline is what Thompson sampling cannot avoid, drawing the offers' Betas from
ready-made arrays with numpy and sorting them. Propensity tables (Monte Carlo over the
posterior) are timed separately: they are computed once per (policy version, segment,
eligible set) and then read from the cache. Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from services.personalize.modeling.bandit import FeedbackCount, SegmentThompson
from services.personalize.modeling.contextual import LinearThompson
from services.personalize.modeling.propensity import PropensityCache
from services.personalize.modeling.strategies import RandomPolicy


def per_call_us(step: Callable[[], object], calls: int, repeats: int) -> float:
    runs = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        runs.append((time.perf_counter() - start) / calls)
    return statistics.median(runs) * 1e6


def policies(offers: list[str], features: int) -> tuple[SegmentThompson, LinearThompson]:
    rng = np.random.default_rng(0)
    segment_policy = SegmentThompson().fit()
    segment_policy.update(
        FeedbackCount(f"seg-{s}", offer, float(rng.integers(0, 50)), float(rng.integers(50, 500)))
        for s in range(10)
        for offer in offers
    )
    x = rng.normal(size=(20_000, features))
    actions = [offers[i] for i in rng.integers(0, len(offers), len(x))]
    linear = LinearThompson().fit(x, actions, rng.binomial(1, 0.1, len(x)))
    return segment_policy, linear


def measure(offers: int, features: int, calls: int, repeats: int) -> list[tuple[str, float]]:
    names = [f"offer-{i}" for i in range(offers)]
    segment_policy, linear = policies(names, features)
    rng = np.random.default_rng(1)
    alpha, beta = segment_policy.posterior("seg-3", names)
    customer = rng.normal(size=features)
    cache = PropensityCache()
    key = (segment_policy.version_, "seg-3", tuple(names), 1)
    cache.get(key, lambda: segment_policy.propensities("seg-3", names, 1, rng))
    few = max(calls // 50, 5)
    return [
        ("raw numpy: beta draws + argsort", per_call_us(
            lambda: np.argsort(-rng.beta(alpha, beta)), calls, repeats)),
        ("SegmentThompson.choose n=1", per_call_us(
            lambda: segment_policy.choose("seg-3", names, 1, rng), calls, repeats)),
        ("SegmentThompson.choose n=3", per_call_us(
            lambda: segment_policy.choose("seg-3", names, 3, rng), calls, repeats)),
        ("LinearThompson.choose n=1", per_call_us(
            lambda: linear.choose(customer, names, 1, rng), calls, repeats)),
        ("RandomPolicy.choose n=1", per_call_us(
            lambda: RandomPolicy().choose(names, 1, rng), calls, repeats)),
        ("propensity table, cache hit", per_call_us(
            lambda: cache.get(key, lambda: segment_policy.propensities("seg-3", names, 1, rng)),
            calls, repeats)),
        (f"SegmentThompson.propensities ({segment_policy.draws} draws)", per_call_us(
            lambda: segment_policy.propensities("seg-3", names, 1, rng), few, repeats)),
        (f"LinearThompson.propensities ({linear.draws} draws)", per_call_us(
            lambda: linear.propensities(customer, names, 1, rng), few, repeats)),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=20)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = measure(args.offers, args.features, args.calls, args.repeats)
    baseline = rows[0][1]
    machine = platform.processor() or platform.machine()
    versions = f"Python {platform.python_version()}, numpy {np.__version__}"
    print(f"{args.offers} offers, {args.features} features; {machine}, {versions}")
    print(f"{'step':<46} {'us/call':>9} {'x raw':>7}")
    for name, us in rows:
        print(f"{name:<46} {us:>9.1f} {us / baseline:>7.1f}")


if __name__ == "__main__":
    main()
