"""Soak benchmark: the whole platform at half its measured capacity for a long while.

``python -m bench.soak`` starts every process of ``segmenta up`` (as `bench.chaos` does,
on servers of its own), sets up a shop, then

1. measures capacity: the same mixed load as the chaos run (orders, events, reviews,
   transcripts, offer requests, feedback), unthrottled from ``--threads`` senders per
   kind for ``--capacity-s`` seconds; the accepted requests per second per kind;
2. runs at half of that for ``--minutes`` (default 30), sampling every ``--every`` seconds
   the resident memory of every process (each with its children; PostgreSQL's and
   Redis's too), the client's p99 latency over the interval and the outbox backlog;
3. drains, checks the ledger (lost and duplicated per stage), and writes the ``soak``
   section of bench/RESULTS.md: start, end, min, max and a sparkline per series, and
   the drift of each (last fifth against the first fifth after warm-up).

    python -m bench.soak                  # 30 minutes
    python -m bench.soak --minutes 5 --out /tmp/RESULTS.md
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.results_file import write_section
from bench.servers import machine_info
from shared.db import create_db_engine
from shared.settings import PostgresSettings
from shared.web.backlog import read_backlog
from tests.support.chaos import Platform, running_platform
from tests.support.chaos_ledger import ledger
from tests.support.chaos_load import KINDS, Client, Load, drained, open_shop, wait_for
from tests.support.chaos_run import RATES

BARS = "▁▂▃▄▅▆▇█"


@dataclass
class Series:
    name: str
    unit: str
    values: list[float] = field(default_factory=list)


def _rss_mb(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
    except psutil.Error:
        return float("nan")


def _server_rss_mb(platform: Platform) -> dict[str, float]:
    postgres = 0.0
    for proc in psutil.process_iter(["name", "cwd"]):
        try:
            if proc.info["name"] == "postgres" and str(platform.postgres.pg_dir) in str(
                proc.info["cwd"] or ""
            ):
                postgres += proc.memory_info().rss / 2**20
        except psutil.Error:
            continue
    redis = platform.redis.proc.pid if platform.redis.proc else 0
    return {"PostgreSQL (all its processes)": postgres, "Redis": _rss_mb(redis)}


def sparkline(values: list[float]) -> str:
    finite = [v for v in values if v == v]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    step = max(1, len(values) // 40)
    return "".join(BARS[int((v - low) / span * (len(BARS) - 1))] for v in values[::step] if v == v)


class Sampler:
    """Every ``every`` seconds: RSS per process, p99 over the interval, outbox backlog."""

    def __init__(self, platform: Platform, client: Client, engine: object, every: float) -> None:
        self.platform, self.client, self.engine, self.every = platform, client, engine, every
        self.series: dict[str, Series] = {}
        self.stop = threading.Event()
        self.marks = dict.fromkeys(KINDS, 0)
        self.thread = threading.Thread(target=self._run)

    def _add(self, name: str, unit: str, value: float) -> None:
        self.series.setdefault(name, Series(name, unit)).values.append(value)

    def sample(self) -> None:
        for name, pid in self.platform.supervisor.pids().items():
            self._add(f"RSS {name}", "MiB", _rss_mb(pid))
        for name, mb in _server_rss_mb(self.platform).items():
            self._add(f"RSS {name}", "MiB", mb)
        with self.client.lock:
            fresh: list[float] = []
            for kind in KINDS:
                latencies = self.client.seen[kind].latencies
                fresh += latencies[self.marks[kind] :]
                self.marks[kind] = len(latencies)
        fresh.sort()
        p99 = fresh[min(len(fresh) - 1, int(len(fresh) * 0.99))] * 1000 if fresh else float("nan")
        self._add("p99 latency (all requests)", "ms", p99)
        backlog = read_backlog(self.engine)  # type: ignore[arg-type]
        if backlog is not None:
            self._add("outbox backlog (rows)", "rows", backlog.waiting + backlog.in_flight)
            self._add("outbox oldest row", "s", backlog.oldest_age_s)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self.sample()

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def drift(values: list[float]) -> str:
    """The last fifth's median against the first fifth's (the first sample skipped)."""
    finite = [v for v in values[1:] if v == v]
    if len(finite) < 5:
        return "-"
    fifth = len(finite) // 5
    first, last = statistics.median(finite[:fifth]), statistics.median(finite[-fifth:])
    if first == 0:
        return f"{last - first:+.1f}"
    return f"{(last - first) / first * 100:+.0f}%"


def measure_capacity(client: Client, threads: int, seconds: float) -> dict[str, float]:
    before = {kind: len(client.seen[kind].accepted) for kind in KINDS}
    load = Load(client, dict.fromkeys(RATES, 1000.0), seed=11)
    load.start(threads_per_kind=threads)
    time.sleep(seconds)
    load.stop()
    return {kind: (len(client.seen[kind].accepted) - before[kind]) / seconds for kind in KINDS}


def section(
    args: argparse.Namespace,
    capacity: dict[str, float],
    sampler: Sampler,
    stages: list[tuple[str, int, int, int]],
    soak_s: float,
    machine: dict[str, str],
) -> str:
    rows = [
        "| series | unit | start | end | min | max | drift | over time |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in sampler.series.values():
        finite = [v for v in s.values if v == v] or [0.0]
        rows.append(
            f"| {s.name} | {s.unit} | {finite[0]:.1f} | {finite[-1]:.1f} | {min(finite):.1f} "
            f"| {max(finite):.1f} | {drift(s.values)} | `{sparkline(s.values)}` |"
        )
    offered = ", ".join(f"{k} {v / 2:.1f}/s" for k, v in capacity.items())
    ledger_rows = "\n".join(
        f"| {name} | {accepted} | {lost} | {duplicated} |"
        for name, accepted, lost, duplicated in stages
    )
    measured = ", ".join(f"{k} {v:.1f}/s" for k, v in capacity.items())
    note = "" if args.minutes >= 30 else " (shortened from the 30-minute default here)"
    return f"""## Soak: the whole platform at half capacity (`python -m bench.soak`)

Every process of `segmenta up` on a PostgreSQL and Redis of the run's own. Capacity,
measured first ({args.threads} unthrottled senders per kind, {args.capacity_s:.0f} s):
{measured}. Then {soak_s / 60:.1f} minutes{note} at half of it ({offered}), sampled every
{args.every:.0f} s. Drift: the median of the last fifth of the samples against the first
fifth's (memory that grows without bound, or a backlog that builds, shows as a large
positive drift). No plotting library is installed, so the curves are text sparklines, each
scaled to its own min-max (a flat series shows its noise at full height).

{chr(10).join(rows)}

| stage | accepted | lost | duplicated |
|---|---:|---:|---:|
{ledger_rows}

Machine: {machine.get("cpu", "?")}, {machine.get("cores", "?")} cores,
{machine.get("ram", "?")}; PostgreSQL {machine.get("postgres", "?")}; {machine.get("date", "")}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--every", type=float, default=10, help="seconds between samples")
    parser.add_argument("--threads", type=int, default=4, help="senders per kind, capacity")
    parser.add_argument("--capacity-s", type=float, default=30)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="segmenta-soak-") as data,
        running_platform(Path(data)) as platform,
    ):
        engine = create_db_engine(PostgresSettings(database_url=platform.database_url))
        machine = machine_info(platform.database_url.replace("+psycopg", "", 1))
        shop = open_shop(platform, engine)
        client = Client(platform, shop)
        capacity = measure_capacity(client, args.threads, args.capacity_s)
        wait_for(lambda: drained(engine, platform.redis.url), 300, "the capacity run's work")
        load = Load(client, {kind: max(0.2, rate / 2) for kind, rate in capacity.items()})
        started = time.monotonic()
        with Sampler(platform, client, engine, args.every) as sampler:
            load.start(threads_per_kind=args.threads)
            time.sleep(args.minutes * 60)
            load.stop()
        client.close()
        soak_s = time.monotonic() - started
        wait_for(lambda: drained(engine, platform.redis.url), 300, "the drain")
        stages = [
            (s.name, s.accepted, len(s.lost), len(s.duplicated))
            for s in ledger(engine, platform.redis.url, shop, client)
        ]
        engine.dispose()
    text = section(args, capacity, sampler, stages, soak_s, machine)
    print(text)
    write_section(args.out, "soak", text)


if __name__ == "__main__":
    main()
