"""What a bandit placement's exploration share buys and costs:
``python -m bench.personalize_exploration [--logs 120] [--shares 0.02,0.05,0.1]``.

An offline replay of the segment bandit (`SegmentThompson`, the serving path's one-offer
draw from the propensity table, learning after every round of 50 visits as the worker
does) on the simulated storefront's tastes (`segmenta.demo.storefront`). For each share
and each of ``--logs`` logs of ``--visits`` visits, it reads the uniform policy's
off-policy estimates (`services.personalize.modeling.ope.evaluate`, as
``GET /v1/placements/{p}/evaluation`` computes them) and reports how often their 95%
bootstrap intervals hold the uniform policy's true rate over those visitors (nominally
95%), and the bandit's true conversion over the last quarter as a share of the per-type
oracle's. Taste seeds rotate over ``--seeds`` (1, 2, 3: those the bandit was tuned on) and
``--held-out`` (4242, 7, 99: not used to choose the default), reported apart. The
results go to the ``personalize-exploration`` section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.report import render_table
from bench.results_file import write_section
from segmenta.demo.storefront import Population, Tastes
from services.personalize.modeling.bandit import SegmentThompson
from services.personalize.modeling.ope import DecisionLog, evaluate

HERE = Path(__file__).resolve().parent
ROUND = 50  # visits between two learning updates, as the storefront sends feedback
CUSTOMERS = 2_000


@dataclass(frozen=True)
class Visits:
    """One replayed log, a row per visit: what the bandit showed with its logged
    propensity and the draw, and the true conversion rates of the shown offer, of the
    uniform policy, of the best offer for the customer's segment and for its type."""

    shown: list[str]
    propensity: list[float]
    reward: list[float]
    chosen: list[float]
    uniform: list[float]
    segment_best: list[float]
    best: list[float]

    def last_quarter(self, rates: list[float]) -> float:
        return float(np.mean(rates[len(rates) * 3 // 4 :]))


def simulate(
    tastes: Tastes, population: Population, share: float, rng: np.random.Generator, visits: int
) -> Visits:
    """``visits`` visits of random customers under the segment bandit exploring ``share``,
    learning after every round of ``ROUND`` visits."""
    policy = SegmentThompson(epsilon=share, draws=2_000).fit()
    offers = list(tastes.offers)
    segments = np.array(population.segments)
    # The best single offer per segment for the types it holds (the segment oracle).
    segment_best = {
        s: int(np.argmax(tastes.rates[population.kinds[segments == s]].mean(axis=0)))
        for s in set(population.segments)
    }
    log = Visits([], [], [], [], [], [], [])
    size = len(population.customer_ids)
    for _ in range(visits // ROUND):
        customers, luck = rng.integers(size, size=ROUND), rng.random(ROUND)
        tables, outcomes = {}, []
        for customer, u in zip(customers, luck, strict=True):
            segment, kind = population.segments[customer], int(population.kinds[customer])
            if segment not in tables:
                tables[segment] = policy.propensities(segment, offers, 1, rng)
            table = tables[segment]
            offer = table.draw_first(float(rng.random()))[0]
            rate = float(tastes.rates[kind, offers.index(offer)])
            converted = float(u < rate)
            log.shown.append(offer)
            log.propensity.append(table.of(offer))
            log.reward.append(converted)
            log.chosen.append(rate)
            log.uniform.append(float(tastes.rates[kind].mean()))
            log.segment_best.append(float(tastes.rates[kind, segment_best[segment]]))
            log.best.append(float(tastes.rates[kind].max()))
            outcomes.append((segment, offer, 1.0, converted))
        policy.record(outcomes)
    return log


@dataclass(frozen=True)
class Replay:
    share: float
    seed: int
    ips_covers: bool
    snips_covers: bool
    bandit_over_oracle: float


def replay(share: float, seed: int, log_seed: int, visits: int) -> Replay:
    """One log of ``visits`` visits under the bandit exploring ``share``."""
    tastes = Tastes.generate(seed)
    population = Population.draw(tastes, CUSTOMERS, seed)
    visited = simulate(tastes, population, share, np.random.default_rng(log_seed), visits)
    log = DecisionLog.from_arrays(
        visited.shown,
        visited.reward,
        visited.propensity,
        np.full(len(visited.shown), 1 / len(tastes.offers)),
    )
    report = evaluate(log, seed=log_seed)
    truth = float(np.mean(visited.uniform))
    return Replay(
        share,
        seed,
        report.ips.ci_low <= truth <= report.ips.ci_high,
        report.snips.ci_low <= truth <= report.snips.ci_high,
        visited.last_quarter(visited.chosen) / visited.last_quarter(visited.best),
    )


def _replay(job: tuple[float, int, int, int]) -> Replay:
    return replay(*job)


def spread(values: list[float]) -> str:
    return f"{np.median(values):.1%} (lowest {min(values):.1%})"


def rows(results: list[Replay], shares: list[float], seeds: tuple[int, ...]) -> list[list[str]]:
    out = []
    for share in shares:
        mine = [r for r in results if r.share == share and r.seed in seeds]
        if not mine:
            continue
        out.append(
            [
                f"{share:.0%}",
                f"{len(mine)}",
                f"{np.mean([r.ips_covers for r in mine]):.1%}",
                f"{np.mean([r.snips_covers for r in mine]):.1%}",
                spread([r.bandit_over_oracle for r in mine]),
            ]
        )
    return out


def replay_arguments(prog: str) -> argparse.ArgumentParser:
    """The options of every offline replay: visits per log, the taste seeds tuned on and
    held out, worker processes and the results file."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--visits", type=int, default=20_000)
    parser.add_argument("--seeds", type=seed_list, default=(1, 2, 3))
    parser.add_argument("--held-out", type=seed_list, default=(4242, 7, 99))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    return parser


def seed_list(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(","))


def seed_tables(
    header: list[str],
    table: Callable[[tuple[int, ...]], list[list[str]]],
    args: argparse.Namespace,
    tuned: str,
) -> list[str]:
    """The results on the taste seeds chosen on, then on the held-out ones."""
    return [
        f"Taste seeds {', '.join(map(str, args.seeds))} ({tuned}):",
        "",
        render_table(header, table(args.seeds)),
        "",
        f"Held-out taste seeds {', '.join(map(str, args.held_out))}:",
        "",
        render_table(header, table(args.held_out)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = replay_arguments("python -m bench.personalize_exploration")
    parser.add_argument("--shares", default="0.02,0.05,0.1")
    parser.add_argument("--logs", type=int, default=120, help="logs per share (tuning seeds)")
    parser.add_argument("--held-out-logs", type=int, default=60, help="logs per share")
    args = parser.parse_args(argv)
    shares = [float(s) for s in args.shares.split(",")]
    jobs = [
        (share, seeds[i % len(seeds)], 1_000 + i, args.visits)
        for share in shares
        for seeds, logs in ((args.seeds, args.logs), (args.held_out, args.held_out_logs))
        for i in range(logs)
    ]
    started = time.monotonic()
    with ProcessPoolExecutor(args.processes) as pool:
        results = list(pool.map(_replay, jobs, chunksize=4))
    minutes = (time.monotonic() - started) / 60
    header = [
        "exploration",
        "logs",
        "IPS 95% interval holds the truth",
        "SNIPS 95% interval holds the truth",
        "bandit / oracle, last quarter (true rates)",
    ]
    lines = [
        "## Exploration share: off-policy intervals against conversion",
        "",
        f"`python -m bench.personalize_exploration`: offline replays of the segment bandit, "
        f"{args.visits:,} visits per log, learning every {ROUND} visits, 6 offers and 4 "
        f"behaviour types per taste seed; the uniform policy estimated from each log "
        f"(1,000 bootstrap replicates). {len(jobs)} logs in {minutes:.0f} min. With n logs, "
        f"a coverage has a standard error of about sqrt(0.05 * 0.95 / n) "
        f"({np.sqrt(0.05 * 0.95 / args.logs):.1%} at {args.logs}).",
        "",
        *seed_tables(
            header,
            lambda seeds: rows(results, shares, seeds),
            args,
            "the default was chosen on these",
        ),
    ]
    markdown = "\n".join(lines)
    write_section(args.out, "personalize-exploration", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
