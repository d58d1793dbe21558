"""Fit time of the CLV models: ``python -m bench.clv [--repeats 5] [--scales 1 10 100]``.

Runs on the CDNOW sample (2,357 customers, ``tests/segment/data/CDNOW_sample.txt``),
tiled ``scale`` times to see how the time grows with the customer count: each copy has
fresh customer ids and its dates shifted by one more day, so that the copies' histories
differ (BG/NBD fits on the distinct histories). Prints the median of ``repeats`` runs per
step; nothing is written.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

from services.segment.clv import (
    BGNBD,
    GammaGamma,
    customer_lifetime_value,
    summarize_transactions,
)

CDNOW_SAMPLE = Path(__file__).parents[1] / "tests" / "segment" / "data" / "CDNOW_sample.txt"
CALIBRATION_END = date(1997, 9, 30)
Result = TypeVar("Result")


def cdnow(scale: int) -> tuple[list[str], list[date], list[float]]:
    rows = [line.split() for line in CDNOW_SAMPLE.read_text().splitlines() if line.strip()]
    ids = [f"{copy}-{row[0]}" for copy in range(scale) for row in rows]
    days = [
        date.fromisoformat(row[2]) + timedelta(days=copy) for copy in range(scale) for row in rows
    ]
    return ids, days, [float(row[4]) for row in rows] * scale


def median_seconds(step: Callable[[], Result], repeats: int) -> tuple[float, Result]:
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run(scale: int, repeats: int) -> tuple[int, dict[str, float]]:
    """The customer count and the median seconds per step."""
    ids, days, amounts = cdnow(scale)
    seconds, s = median_seconds(
        lambda: summarize_transactions(ids, days, amounts, calibration_end=CALIBRATION_END),
        repeats,
    )
    bgnbd_s, bgnbd = median_seconds(lambda: BGNBD().fit(s.frequency, s.recency, s.T), repeats)
    spend_s, spend = median_seconds(
        lambda: GammaGamma().fit(s.frequency, s.monetary_value), repeats
    )
    clv_s, _ = median_seconds(
        lambda: customer_lifetime_value(bgnbd, spend, s, horizon=52, discount_rate=0.1), repeats
    )
    return len(s), {
        "summary_s": seconds,
        "bgnbd_fit_s": bgnbd_s,
        "gamma_gamma_fit_s": spend_s,
        "clv_52w_s": clv_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    rows = [run(scale, args.repeats) for scale in args.scales]
    print(" | ".join(f"{name:>17}" for name in ["customers", *rows[0][1]]))
    for customers, seconds in rows:
        print(" | ".join([f"{customers:>17,}", *(f"{v:>17.3f}" for v in seconds.values())]))


if __name__ == "__main__":
    main()
