"""CLV on a time split of the demo shop: ``python -m bench.clv_split [--customers 5000]``.

The demo generator's orders up to ``holdout`` days before its ``now`` are the history;
BG/NBD and Gamma-Gamma are fitted on it as the training fits them, and each customer's
revenue in the holdout is predicted and compared with what they really spent there, per
segment (the generator's personas, which the segmentation recovers at ARI >= 0.95, under
the names it gives them). A naive baseline is measured in the same run: each customer
keeps spending at their past daily rate. Repeated over generator seeds; the table shows
the first seed, the ratio column the median over all. Writes the "CLV time split"
section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np

from bench.results_file import write_section
from segmenta.demo.generate import DEFAULT_NOW, generate
from services.segment.scoring.clv_trust import DEFAULT_MIN_HISTORY_DAYS
from services.segment.scoring.clv_validation import TimeSplit, time_split

RESULTS = Path(__file__).with_name("RESULTS.md")
NAMES = {
    "champion": "Champions",
    "loyal_regular": "Loyal regulars",
    "bargain_hunter": "Bargain hunters",
    "new_customer": "New customers",
    "lapsing_high_spender": "Lapsing high spenders",
    "window_shopper": "Window shoppers",
    "unhappy_returner": "Unhappy customers",
}


def load(folder: Path) -> tuple[list[str], list[str], list[float], dict[str, str]]:
    ids, days, totals = [], [], []
    with (folder / "orders.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            order = json.loads(line)
            ids.append(order["customer_id"])
            days.append(order["placed_at"][:10])
            totals.append(float(order["total"]))
    with (folder / "truth.csv").open(encoding="utf-8") as f:
        groups = {row["customer_id"]: NAMES[row["persona"]] for row in csv.DictReader(f)}
    return ids, days, totals, groups


def naive(
    ids: list[str], days: list[str], totals: list[float], cut: str, span: int
) -> dict[str, float]:
    """Each customer's past revenue per day since their first order, times the holdout."""
    first: dict[str, str] = {}
    spent: dict[str, float] = {}
    for cid, day, total in zip(ids, days, totals, strict=True):
        if day <= cut:
            first[cid] = min(first.get(cid, day), day)
            spent[cid] = spent.get(cid, 0.0) + total
    end = np.datetime64(cut, "D")
    return {
        cid: spent[cid] / max(float((end - np.datetime64(first[cid], "D")).astype(int)), 1.0) * span
        for cid in first
    }


def one_seed(customers: int, seed: int, holdout: int) -> tuple[TimeSplit, dict[str, float]]:
    with tempfile.TemporaryDirectory() as scratch:
        generate(customers, seed, Path(scratch))
        ids, days, totals, groups = load(Path(scratch))
    cut = (DEFAULT_NOW - timedelta(days=holdout)).date()
    split = time_split(
        ids,
        days,
        totals,
        groups,
        calibration_end=cut,
        observation_end=DEFAULT_NOW.date(),
        min_history_days=DEFAULT_MIN_HISTORY_DAYS,
    )
    baseline = naive(ids, days, totals, cut.isoformat(), holdout)
    by_group: dict[str, list[float]] = {}
    for cid, value in baseline.items():
        by_group.setdefault(groups[cid], []).append(value)
    means = {name: float(np.mean(values)) for name, values in by_group.items()}
    means["all"] = float(np.mean(list(baseline.values())))
    return split, means


def render(
    splits: list[tuple[TimeSplit, dict[str, float]]], customers: int, holdout: int, seeds: list[int]
) -> str:
    first, baseline = splits[0]
    ratios: dict[str, list[float]] = {}
    for split, _ in splits:
        for check in split.groups:
            if check.ratio is not None:
                ratios.setdefault(check.group, []).append(check.ratio)
    lines = [
        "## CLV time split (`python -m bench.clv_split`)",
        "",
        f"Demo shop, {customers:,} customers; BG/NBD + Gamma-Gamma fitted on the orders up to "
        f"{first.calibration_end}, revenue predicted for the {holdout} days to "
        f"{first.observation_end} and compared with what was spent (EUR, mean per customer "
        f"who had ordered by the cut-off). Seed {seeds[0]} shown; last column: median "
        f"predicted/actual over seeds {', '.join(map(str, seeds))}. Naive baseline, same run: "
        "each customer keeps their past daily spend. Untrusted: one order, first placed under "
        f"{DEFAULT_MIN_HISTORY_DAYS:.0f} days before the cut-off; their CLV is withheld.",
        "",
        "| segment | customers | untrusted | predicted | actual | predicted/actual | "
        "naive/actual | median predicted/actual |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for check in first.groups:
        naive_mean = baseline.get(check.group)
        naive_ratio = f"{naive_mean / check.actual:.2f}" if naive_mean and check.actual else "-"
        ratio = f"{check.ratio:.2f}" if check.ratio is not None else "-"
        median = ratios.get(check.group)
        lines.append(
            f"| {check.group} | {check.customers:,} | {check.untrusted:,} | "
            f"{check.predicted:,.0f} | {check.actual:,.0f} | {ratio} | {naive_ratio} | "
            f"{statistics.median(median):.2f} |"
            if median
            else f"| {check.group} | {check.customers:,} | {check.untrusted:,} | "
            f"{check.predicted:,.0f} | {check.actual:,.0f} | {ratio} | {naive_ratio} | - |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--holdout-days", type=int, default=180)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    splits = [one_seed(args.customers, seed, args.holdout_days) for seed in args.seeds]
    markdown = render(splits, args.customers, args.holdout_days, args.seeds)
    print(markdown)
    write_section(args.out, "clv-time-split", markdown)


if __name__ == "__main__":
    main()
