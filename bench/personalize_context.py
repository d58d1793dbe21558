"""How far the segment bandit gets when segments are not the shoppers' tastes:
``python -m bench.personalize_context [--repeats 3]``.

The simulated storefront's default gives the bandit a perfect context: one segment per
behaviour type. A real segmentation is built from spend and habits, not from the
taste for one offer, so a segment mixes types. This replays the segment bandit
(`bench.personalize_exploration.simulate`, 20,000 visits, the default 5% exploration)
with segments of lower purity (``Population.draw(purity=...)``: that share of customers
keeps its type's segment, the rest land in a random one) and with a larger catalogue
(8 types, 12 offers), and reports its true conversion over the last quarter against:

- the segment oracle: the best single offer per segment for the types in it, the most any
  policy whose only context is the segment can earn;
- the type oracle: the best offer per customer's type, which needs the simulator's secret.

Taste seeds 1-3 are those the bandit was tuned on; 4242, 7 and 99 were not. The results
go to the ``personalize-context`` section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.personalize_exploration import CUSTOMERS, simulate
from bench.report import render_table
from bench.results_file import write_section
from segmenta.demo.storefront import Population, Tastes

HERE = Path(__file__).resolve().parent
SHARE = 0.05  # a new placement's exploration
CATALOGUES = ((4, 6), (8, 12))  # (behaviour types, offers)
PURITIES = (1.0, 0.8, 0.6)


@dataclass(frozen=True)
class Context:
    types: int
    offers: int
    purity: float
    seed: int
    over_segment_oracle: float
    over_type_oracle: float
    segment_over_type: float  # what the segments leave on the table


def replay(
    types: int, offers: int, purity: float, seed: int, log_seed: int, visits: int
) -> Context:
    tastes = Tastes.generate(seed, types=types, offers=offers)
    population = Population.draw(tastes, CUSTOMERS, seed, purity=purity)
    log = simulate(tastes, population, SHARE, np.random.default_rng(log_seed), visits)
    bandit, segment = log.last_quarter(log.chosen), log.last_quarter(log.segment_best)
    best = log.last_quarter(log.best)
    return Context(types, offers, purity, seed, bandit / segment, bandit / best, segment / best)


def _replay(job: tuple[int, int, float, int, int, int]) -> Context:
    return replay(*job)


def rows(results: list[Context], seeds: tuple[int, ...]) -> list[list[str]]:
    out = []
    for types, offers in CATALOGUES:
        for purity in PURITIES:
            mine = [
                r
                for r in results
                if (r.types, r.offers, r.purity) == (types, offers, purity) and r.seed in seeds
            ]
            if not mine:
                continue
            segment = [r.over_segment_oracle for r in mine]
            out.append(
                [
                    f"{types} x {offers}",
                    f"{purity:.0%}",
                    f"{len(mine)}",
                    f"{np.median(segment):.1%} (lowest {min(segment):.1%})",
                    f"{np.median([r.over_type_oracle for r in mine]):.1%}",
                    f"{np.median([r.segment_over_type for r in mine]):.1%}",
                ]
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.personalize_context")
    parser.add_argument("--visits", type=int, default=20_000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--held-out", default="4242,7,99")
    parser.add_argument("--repeats", type=int, default=3, help="logs per seed and setting")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    tuning = tuple(int(s) for s in args.seeds.split(","))
    held_out = tuple(int(s) for s in args.held_out.split(","))
    jobs = [
        (types, offers, purity, seed, 1_000 + repeat, args.visits)
        for types, offers in CATALOGUES
        for purity in PURITIES
        for seed in tuning + held_out
        for repeat in range(args.repeats)
    ]
    started = time.monotonic()
    with ProcessPoolExecutor(args.processes) as pool:
        results = list(pool.map(_replay, jobs))
    minutes = (time.monotonic() - started) / 60
    header = [
        "types x offers",
        "segment purity",
        "logs",
        "bandit / segment oracle",
        "bandit / type oracle",
        "segment oracle / type oracle",
    ]
    lines = [
        "## The segment bandit when segments are not the tastes",
        "",
        f"`python -m bench.personalize_context`: offline replays of the segment bandit at "
        f"{SHARE:.0%} exploration, {args.visits:,} visits per log over {CUSTOMERS:,} "
        f"customers, learning every 50 visits; true conversion over the last quarter. "
        f"Purity: the share of customers whose segment is their behaviour type (the rest "
        f"are in a random segment). The segment oracle shows each segment its best single "
        f"offer, the most a policy seeing only segments can earn; the type oracle knows "
        f"each customer's type. Medians over the logs; {len(jobs)} logs in "
        f"{minutes:.0f} min.",
        "",
        f"Taste seeds {', '.join(map(str, tuning))} (the bandit's defaults were chosen on "
        f"these, at 4 x 6 and purity 100%):",
        "",
        render_table(header, rows(results, tuning)),
        "",
        f"Held-out taste seeds {', '.join(map(str, held_out))}:",
        "",
        render_table(header, rows(results, held_out)),
    ]
    markdown = "\n".join(lines)
    write_section(args.out, "personalize-context", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
