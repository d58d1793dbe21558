"""Large, cheap, valid event streams for benchmarks, never held in memory.

``iter_events`` yields events of the demo shop's customers (``c-000001`` ..) one at a
time; ``write_events_file`` streams them into a JSON Lines or CSV file for bulk import.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any, Literal

from segmenta.demo import texts
from segmenta.demo.formats import compact_json, iso_time
from segmenta.demo.generate import DAY, DEFAULT_NOW, customer_id

EVENT_COLUMNS = ("event_id", "customer_id", "type", "occurred_at", "channel", "properties")

_STREAM_TYPES = {
    "page_view": 40, "search": 12, "add_to_cart": 10, "checkout_start": 4, "email_open": 12,
    "email_click": 4, "app_session": 8, "store_visit": 2, "support_contact": 1,
    "purchase": 5, "return": 1, "refund": 1,
}  # fmt: skip


def iter_events(n: int, seed: int, customers: int = 10_000) -> Iterator[dict[str, Any]]:
    """Yield ``n`` valid event records cheaply, one at a time (memory stays flat).

    Customers are ``c-000001`` .. ``customer_id(customers)`` as in ``generate``; event ids
    are ``e-b<seed>-<n>`` so they never collide with ``generate``'s. Times fall within
    the year before ``DEFAULT_NOW``.
    """
    if n < 0 or customers < 1:
        raise ValueError("n must not be negative and customers must be positive")
    rng = random.Random(seed)
    types = list(_STREAM_TYPES)
    cumulative = list(accumulate(_STREAM_TYPES.values()))
    products = texts.product_count(customers)
    start = int(DEFAULT_NOW.timestamp()) - 365 * DAY
    channels = ("web", "web", "app")
    for i in range(n):
        kind = rng.choices(types, cum_weights=cumulative)[0]
        product = f"p-{rng.randrange(products) + 1:04d}"
        props: dict[str, Any]
        if kind == "search":
            props = {"query": rng.choice(texts.SEARCH_TERMS)}
        elif kind in ("purchase", "refund"):
            props = {"amount": round(rng.uniform(5, 400), 2)}
        elif kind.startswith("email"):
            props = {"campaign": rng.choice(texts.CAMPAIGNS)}
        else:
            props = {"product_id": product}
        yield {
            "event_id": f"e-b{seed}-{i + 1:09d}",
            "customer_id": customer_id(rng.randrange(customers) + 1),
            "type": kind,
            "occurred_at": iso_time(start + rng.randrange(365 * DAY)),
            "channel": "email" if kind.startswith("email") else rng.choice(channels),
            "properties": props,
        }


def write_events_file(
    path: Path, n: int, seed: int, fmt: Literal["jsonl", "csv"], *, customers: int = 10_000
) -> int:
    """Stream ``n`` events from ``iter_events`` into ``path``; return the rows written.

    CSV columns are ``EVENT_COLUMNS``; ``properties`` is a JSON-encoded string.
    """
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown format {fmt!r}; use 'jsonl' or 'csv'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "jsonl":
            for event in iter_events(n, seed, customers):
                handle.write(compact_json(event) + "\n")
                written += 1
        else:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(EVENT_COLUMNS)
            for event in iter_events(n, seed, customers):
                props = compact_json(event["properties"])
                writer.writerow([*(event[c] for c in EVENT_COLUMNS[:-1]), props])
                written += 1
    return written
