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

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from bench.personalize_exploration import (
    CUSTOMERS,
    ROUND,
    replay_arguments,
    seed_tables,
    simulate,
    spread,
)
from bench.results_file import write_section
from segmenta.demo.storefront import Population, Tastes

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
            setting = (types, offers, purity)
            mine = [r for r in results if (r.types, r.offers, r.purity) == setting]
            mine = [r for r in mine if r.seed in seeds]
            if not mine:
                continue
            out.append(
                [
                    f"{types} x {offers}",
                    f"{purity:.0%}",
                    f"{len(mine)}",
                    spread([r.over_segment_oracle for r in mine]),
                    f"{np.median([r.over_type_oracle for r in mine]):.1%}",
                    f"{np.median([r.segment_over_type for r in mine]):.1%}",
                ]
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = replay_arguments("python -m bench.personalize_context")
    parser.add_argument("--repeats", type=int, default=3, help="logs per seed and setting")
    args = parser.parse_args(argv)
    jobs = [
        (types, offers, purity, seed, 1_000 + repeat, args.visits)
        for types, offers in CATALOGUES
        for purity in PURITIES
        for seed in args.seeds + args.held_out
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
        f"customers, learning every {ROUND} visits; true conversion over the last quarter. "
        f"Purity: the share of customers whose segment is their behaviour type (the rest "
        f"are in a random segment). The segment oracle shows each segment its best single "
        f"offer, the most a policy seeing only segments can earn; the type oracle knows "
        f"each customer's type. Medians over the logs; {len(jobs)} logs in "
        f"{minutes:.0f} min.",
        "",
        *seed_tables(
            header,
            lambda seeds: rows(results, seeds),
            args,
            "the bandit's defaults were chosen on these, at 4 x 6 and purity 100%",
        ),
    ]
    markdown = "\n".join(lines)
    write_section(args.out, "personalize-context", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
