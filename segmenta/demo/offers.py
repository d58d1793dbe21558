"""The demo's last act: a simulated storefront asks for offers for a minute, and the
bandit learns which offer each segment takes.

The demo's customers keep their personas (``truth.csv``); each persona gets a taste (a
conversion rate per offer, drawn from the seed) that only the simulator knows. The
bandit sees the segments the demo's segmentation found, never the personas.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.table import Table

from segmenta.demo.storefront import Population, Storefront, Tally, Tastes, wait_until
from segmenta.demo.storefront_shop import configure

PLACEMENT = "home"


def demo_population(truth: Path, tastes_seed: int) -> tuple[Tastes, Population]:
    with truth.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    personas = sorted({row["persona"] for row in rows})
    tastes = Tastes.generate(tastes_seed, types=len(personas), offers=max(6, len(personas)))
    kinds = np.array([personas.index(row["persona"]) for row in rows], dtype=np.int64)
    ids = tuple(row["customer_id"] for row in rows)
    return tastes, Population(ids, kinds, segments=("",) * len(ids))


def run_storefront(
    personalize_url: str,
    admin_key: str,
    storefront_key: str,
    truth: Path,
    *,
    seconds: float = 60,
    seed: int = 7,
) -> Tally:
    """Offers on the ``home`` placement, then visits for ``seconds``."""
    tastes, population = demo_population(truth, seed)
    with httpx.Client(base_url=personalize_url, timeout=30) as client:
        configure(client, admin_key, tastes, {PLACEMENT: {"strategy": "bandit"}})
    storefront = Storefront(personalize_url, storefront_key, tastes, population, seed)
    try:

        def serving() -> bool:
            try:
                return bool(storefront.ask(0, 0, PLACEMENT)["offers"])
            except httpx.HTTPStatusError:
                return False  # 404 until the worker has published the placement

        wait_until(serving, 120, "the offers to be served")
        tally, ends = Tally(), time.monotonic() + seconds
        while time.monotonic() < ends:
            storefront.visit(tally, 200, [PLACEMENT])
        return tally
    finally:
        storefront.close()


def learned_table(personalize_url: str, admin_key: str) -> Table:
    """Per segment, the offer the bandit shows most now and the conversion it measured."""
    with httpx.Client(base_url=personalize_url, timeout=60) as client:
        stats: dict[str, Any] = (
            client.get(
                f"/v1/dashboard/placements/{PLACEMENT}/offers",
                params={"days": 1},
                headers={"Authorization": f"Bearer {admin_key}"},
            )
            .raise_for_status()
            .json()
        )
    names = {s["key"]: s["name"] for s in stats["segments"]}
    table = Table("segment", "decisions", "offer shown most", "its share", "its conversion")
    for segment in stats["segments"]:
        rows = [r for r in stats["stats"] if r["segment"] == segment["key"]]
        if not rows or segment["key"] == "*":
            continue
        top = max(rows, key=lambda r: r["exposures"])
        total = sum(r["exposures"] for r in rows) or 1
        rate = "-" if top["rate"] is None else f"{top['rate']:.1%}"
        table.add_row(
            names.get(segment["key"], segment["key"]),
            str(segment["decisions"]),
            top["offer_id"],
            f"{top['exposures'] / total:.0%}",
            rate,
        )
    return table
