"""Near-real-time re-assignment under a steady stream of orders.

An open-loop load posts orders to the ingest API at a fixed rate (batches of a few
orders, sent on schedule from a pool of keep-alive connections, never waiting for the
previous answer). A customer gets a new order only once the previous one for them was
answered, so each customer's orders commit in the order they were answered. For every
accepted order the wall-clock time of its 200 answer is kept, and which of its
customer's orders it is (its number ``j`` in this load).

A poller reads the tenant's feature rows every ``poll_s``: the stored ``frequency``
(number of orders) and ``updated_at``. The refresh writes the features and the
membership in one transaction, so:

* an order is reflected once the poller sees its customer's ``frequency`` reach the
  count before the load plus ``j``: the stored features count it;
* its latency is the start of the first poll that saw that, minus the answer time (an
  upper bound, at most ``poll_s`` late; it can be slightly negative when the refresh
  committed before the answer reached the client); ``updated_at`` (the refresh
  transaction's start) minus the answer time is the wait before the refresh began
  (relay, broker, queue), negative when the refresh started before the answer arrived.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psutil
import psycopg

from bench.http import RawSender

REFRESH_TASK = "segment.refresh_customers"


@dataclass
class Ack:
    customer_id: str
    acked: float  # time.time() when the 200 answer arrived
    number: int  # the customer's n-th order in this load, from 1


@dataclass
class LoadOutcome:
    acks: list[Ack] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    first_send: float = 0.0
    last_ack: float = 0.0
    late_starts: int = 0  # batches that found every connection busy at their slot


def _order(customer: str, products: int, rng: random.Random, n: int) -> dict[str, Any]:
    lines: list[dict[str, Any]] = []
    total = 0.0
    for line in range(2 if rng.random() < 0.4 else 1):
        price, quantity = round(rng.uniform(8, 150), 2), 1 + line % 2
        product = f"p-{rng.randrange(1, products + 1):04d}"
        lines.append({"product_id": product, "quantity": quantity, "unit_price": price})
        total += quantity * price
    return {
        "order_id": f"o-rt-{n:08d}",
        "customer_id": customer,
        "placed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "currency": "EUR",
        "total": round(total, 2),
        "channel": rng.choice(["web", "app", "store"]),
        "lines": lines,
    }


def post_orders(
    url: str,
    key: str,
    *,
    rate: float,
    batch: int,
    duration: float,
    connections: int,
    customers: list[str],
    products: int,
    seed: int,
    first_order: int,
) -> LoadOutcome:
    return asyncio.run(
        _post_orders(
            url, key, rate, batch, duration, connections, customers, products, seed, first_order
        )
    )


async def _post_orders(
    url: str,
    key: str,
    rate: float,
    batch: int,
    duration: float,
    connections: int,
    customers: list[str],
    products: int,
    seed: int,
    first_order: int,
) -> LoadOutcome:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    idle: asyncio.Queue[RawSender] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(RawSender(f"{url}/v1/orders", headers))
    rng = random.Random(seed)
    out = LoadOutcome()
    number = first_order
    busy: set[str] = set()  # customers with an order in flight (or lost to an error)
    counts: dict[str, int] = {}  # orders per customer in this load

    async def send(orders: list[dict[str, Any]], numbers: list[int]) -> None:
        sender = await idle.get()
        try:
            status, payload = await sender.post(orjson.dumps(orders))
        except (OSError, asyncio.IncompleteReadError) as exc:
            out.errors.append(repr(exc))
            return  # its customers stay busy: whether their orders committed is unknown
        finally:
            idle.put_nowait(sender)
        acked = time.time()
        if status != 200:
            out.errors.append(f"{status} {payload[:200].decode(errors='replace')}")
            return
        answer = orjson.loads(payload)
        if answer.get("accepted") != len(orders):
            out.errors.append(f"accepted {answer.get('accepted')} of {len(orders)}: {answer}")
            return
        for order, n in zip(orders, numbers, strict=True):
            out.acks.append(Ack(order["customer_id"], acked, n))
            busy.discard(order["customer_id"])
        out.last_ack = max(out.last_ack, acked)

    def pick() -> str:
        for _ in range(1000):
            customer = rng.choice(customers)
            if customer not in busy:
                return customer
        raise RuntimeError("every customer has an order in flight")

    interval = batch / rate
    tasks = []
    start = time.perf_counter()
    out.first_send = time.time()
    slot = 0
    while (due := start + slot * interval) < start + duration:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if idle.empty():
            out.late_starts += 1
        orders, numbers = [], []
        for _ in range(batch):
            customer = pick()
            busy.add(customer)
            counts[customer] = counts.get(customer, 0) + 1
            orders.append(_order(customer, products, rng, number))
            numbers.append(counts[customer])
            number += 1
        out.sent += len(orders)
        tasks.append(asyncio.create_task(send(orders, numbers)))
        slot += 1
    await asyncio.gather(*tasks)
    while not idle.empty():
        await idle.get_nowait().close()
    return out


class FreshnessPoller:
    """Polls the tenant's stored order counts and the segment backlog in a thread."""

    def __init__(self, url: str, tenant_id: int, frequency_index: int, poll_s: float = 0.1) -> None:
        self.url, self.tenant_id, self.poll_s = url, tenant_id, poll_s
        self.index = frequency_index + 1  # SQL arrays count from 1
        # customer pk -> [(frequency, updated_at, start of the first poll that saw it)]
        self.seen: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
        self.backlog: list[tuple[float, int]] = []  # (time, pending refresh rows)
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                began = time.time()
                rows = conn.execute(
                    "SELECT customer_pk, feature_values[%s], extract(epoch FROM updated_at)"
                    "::float8 FROM customer_features WHERE tenant_id = %s"
                    " AND feature_set = 'v1'",
                    [self.index, self.tenant_id],
                ).fetchall()
                for pk, frequency, stamp in rows:
                    history = self.seen[int(pk)]
                    if not history or history[-1][1] != stamp:
                        history.append((float(frequency), float(stamp), began))
                if self.polls % 5 == 0:
                    pending = conn.execute(
                        "SELECT count(*) FROM outbox WHERE tenant_id = %s AND task_name = %s",
                        [self.tenant_id, REFRESH_TASK],
                    ).fetchone()
                    self.backlog.append((began, int(pending[0]) if pending else 0))
                self.polls += 1
                self._stop.wait(max(0.0, self.poll_s - (time.time() - began)))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def reflected(self, pk: int, frequency: float) -> tuple[float, float] | None:
        """(updated_at, seen at) of the first refresh that stored at least ``frequency``
        orders for the customer; None when none has been seen yet."""
        for stored, stamp, seen_at in list(self.seen.get(pk, [])):
            if stored >= frequency:
                return stamp, seen_at
        return None


@dataclass(frozen=True)
class Freshness:
    latencies: list[float]  # seen - acked, per reflected order
    waits: list[float]  # updated_at - acked: until the refresh began
    unreflected: int


def match(
    poller: FreshnessPoller, acks: list[Ack], pks: dict[str, int], before: dict[int, int]
) -> Freshness:
    """``before``: each customer's orders before the load."""
    latencies, waits, missing = [], [], 0
    for ack in acks:
        pk = pks[ack.customer_id]
        found = poller.reflected(pk, before.get(pk, 0) + ack.number)
        if found is None:
            missing += 1
            continue
        stamp, seen_at = found
        latencies.append(seen_at - ack.acked)
        waits.append(stamp - ack.acked)
    return Freshness(latencies, waits, missing)


def wait_for_all(
    poller: FreshnessPoller,
    acks: list[Ack],
    pks: dict[str, int],
    before: dict[int, int],
    limit_s: float,
) -> float | None:
    """Seconds from now until every order is reflected; None if not within ``limit_s``."""
    started = time.time()
    needed: dict[int, int] = {}
    for ack in acks:
        pk = pks[ack.customer_id]
        needed[pk] = max(needed.get(pk, 0), before.get(pk, 0) + ack.number)
    while time.time() - started < limit_s:
        if all(poller.reflected(pk, n) is not None for pk, n in needed.items()):
            return time.time() - started
        time.sleep(poller.poll_s)
    return None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class CpuTimes:
    """CPU seconds per named process group over a ``with`` block, in cores used."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.cores: dict[str, float] = {}

    @staticmethod
    def _tree(pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    t = p.cpu_times()
                    total += t.user + t.system
            except psutil.Error:
                pass
        return total

    @staticmethod
    def _postgres() -> float:
        total = 0.0
        for proc in psutil.process_iter(["name", "cpu_times"]):
            if proc.info.get("name") in ("postgres", "postmaster") and proc.info.get("cpu_times"):
                t = proc.info["cpu_times"]
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def _snapshot(self) -> dict[str, float]:
        snap = {name: self._tree(pids) for name, pids in self.groups.items()}
        snap["Postgres (all databases)"] = self._postgres()
        cpu = psutil.cpu_times()
        snap["machine"] = sum(cpu) - cpu.idle - getattr(cpu, "iowait", 0.0)
        return snap

    def __enter__(self) -> CpuTimes:
        self._start = (time.perf_counter(), self._snapshot())
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._start[0]
        end = self._snapshot()
        self.cores = {name: (end[name] - value) / wall for name, value in self._start[1].items()}
