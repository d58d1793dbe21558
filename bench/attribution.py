"""Attribution against simulated journeys of known contribution:
``python -m bench.attribution [--seeds 10] [--journeys 20000]``.

For each world (see `services.segment.attribution.simulation`) and seed: does each
model rank the channels as their true contributions do (exactly, and Spearman's rho), and
how far are its shares from the true shares (mean absolute difference). Then the time to
attribute with all five models against last touch alone (the baseline), median of
repeated runs on the same journeys. Rewrites the "Attribution" section of
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from bench.results_file import write_section
from services.segment.attribution.models import MODELS, Journey, attribute
from services.segment.attribution.simulation import (
    ALIGNED,
    POSITION_BIAS,
    REACH_BIAS,
    Simulated,
    ranking,
    simulate_funnel,
    simulate_lift,
)

RESULTS = Path(__file__).with_name("RESULTS.md")
WORLDS: dict[str, Callable[[int, int], Simulated]] = {
    "lift, reach and lift in the same order": lambda n, seed: simulate_lift(
        ALIGNED, journeys=n, seed=seed
    ),
    "lift, same reach (last touch = a channel with no lift)": lambda n, seed: simulate_lift(
        POSITION_BIAS, journeys=n, seed=seed
    ),
    "lift, reach differs (a wide, weak channel)": lambda n, seed: simulate_lift(
        REACH_BIAS, journeys=n, seed=seed
    ),
    "funnel (contribution = conversions lost when blocked)": lambda n, seed: simulate_funnel(
        journeys=n, seed=seed
    ),
}


def spearman(a: list[float], b: list[float]) -> float:
    ranks_a, ranks_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def score_world(
    make: Callable[[int, int], Simulated], seeds: int, n: int
) -> dict[str, list[float]]:
    """Per model: [share of seeds ranked exactly right, mean rho, mean |share error|]."""
    exact: dict[str, list[float]] = {m: [] for m in MODELS}
    rho: dict[str, list[float]] = {m: [] for m in MODELS}
    error: dict[str, list[float]] = {m: [] for m in MODELS}
    for seed in range(seeds):
        simulated = make(n, seed)
        result = attribute(simulated.journeys)
        total = sum(simulated.truth.values())
        truth = [simulated.truth[c] / total for c in result.channels]
        for model in MODELS:
            shares = result.shares(model).tolist()
            ranked = ranking(dict(zip(result.channels, shares, strict=True)))
            exact[model].append(float(ranked == ranking(simulated.truth)))
            rho[model].append(spearman(shares, truth))
            error[model].append(float(np.mean(np.abs(np.array(shares) - truth))))
    return {
        m: [statistics.mean(exact[m]), statistics.mean(rho[m]), statistics.mean(error[m])]
        for m in MODELS
    }


def last_touch_only(journeys: list[Journey]) -> dict[str, float]:
    credit: dict[str, float] = {}
    for journey in journeys:
        if journey.converted:
            credit[journey.path[-1]] = credit.get(journey.path[-1], 0.0) + 1.0
    return credit


def median_seconds(step: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--journeys", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    lines = [
        "## Attribution (`python -m bench.attribution`)",
        "",
        f"Simulated journeys of known contribution, {args.journeys:,} journeys per world, "
        f"{args.seeds} seeds. Exact: share of seeds where the model ranks the channels as "
        "their true contributions do; rho: mean Spearman rank correlation; error: mean "
        "absolute difference between the model's and the true shares.",
        "",
    ]
    for world, make in WORLDS.items():
        scores = score_world(make, args.seeds, args.journeys)
        lines += [f"### {world}", "", "| model | exact | rho | error |", "|---|---|---|---|"]
        lines += [f"| {m} | {s[0]:.0%} | {s[1]:.2f} | {s[2]:.3f} |" for m, s in scores.items()]
        lines.append("")
        print(world, {m: [round(v, 3) for v in s] for m, s in scores.items()})
    for n in (args.journeys, args.journeys * 10):
        journeys = simulate_lift(POSITION_BIAS, journeys=n, seed=0).journeys
        all_s = median_seconds(partial(attribute, journeys), args.repeats)
        base_s = median_seconds(partial(last_touch_only, journeys), args.repeats)
        lines.append(
            f"- {len(journeys):,} journeys: all five models {all_s:.2f} s, last touch alone "
            f"{base_s:.3f} s ({all_s / base_s:.0f}x), median of {args.repeats}."
        )
        print(n, all_s, base_s)
    write_section(args.results, "attribution", "\n".join(lines))


if __name__ == "__main__":
    main()
