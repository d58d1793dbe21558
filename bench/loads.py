"""Load generators for the API and the raw-Postgres ceilings they are compared with."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from bench.servers import RssSampler
from segmenta.demo.event_stream import iter_events
from segmenta.demo.generate import customer_id

CUSTOMERS = 10_000
COPY_BLOCK = 1 << 20
EVENT_COLUMNS = "tenant_id, event_id, customer_pk, type, occurred_at, channel, properties"
INSERT_ONE = (
    f"INSERT INTO event ({EVENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, CAST(%s AS jsonb))"
)
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}

# event_id, customer_id, type, occurred_at, channel, properties (JSON text)
EventRow = tuple[str, str, str, str, str | None, str | None]


def _row(event: dict[str, Any]) -> EventRow:
    props = event.get("properties")
    return (
        event["event_id"],
        event["customer_id"],
        event["type"],
        event["occurred_at"],
        event.get("channel"),
        None if props is None else orjson.dumps(props).decode(),
    )


@dataclass
class Prepared:
    """The same events twice: as JSON batches for the API and as rows for COPY."""

    bodies: list[bytes]
    rows: list[EventRow]


def prepare_events(n: int, seed: int, batch: int) -> Prepared:
    bodies: list[bytes] = []
    rows: list[EventRow] = []
    pending: list[dict[str, Any]] = []
    for event in iter_events(n, seed, CUSTOMERS):
        rows.append(_row(event))
        pending.append(event)
        if len(pending) == batch:
            bodies.append(orjson.dumps(pending))
            pending = []
    if pending:
        bodies.append(orjson.dumps(pending))
    return Prepared(bodies, rows)


def read_rows(path: Path) -> list[EventRow]:
    with path.open("rb") as handle:
        return [_row(orjson.loads(line)) for line in handle if line.strip()]


def file_chunks(path: Path, size: int = COPY_BLOCK) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(size):
            yield block


def new_tenant(url: str, name: str, customers: int = CUSTOMERS) -> tuple[int, dict[str, int]]:
    """A tenant with customers c-000001.. created by plain INSERTs; (id, pk by customer)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("INSERT INTO tenant (name) VALUES (%s) RETURNING id", (name,))
        tenant_id = int(row.fetchone()[0])  # type: ignore[index]
        ids = [customer_id(i) for i in range(1, customers + 1)]
        made = conn.execute(
            "INSERT INTO customer (tenant_id, customer_id) "
            "SELECT %s, unnest(CAST(%s AS text[])) RETURNING customer_id, id",
            (tenant_id, ids),
        ).fetchall()
    return tenant_id, {cid: int(pk) for cid, pk in made}


def count_events(url: str, tenant_id: int) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM event WHERE tenant_id = %s", (tenant_id,))
        return int(row.fetchone()[0])  # type: ignore[index]


_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _field(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_ESCAPE)


def copy_blocks(rows: list[EventRow], tenant_id: int, pks: dict[str, int]) -> list[bytes]:
    """The rows in COPY text format, in blocks of about 1 MiB, encoded before timing."""
    blocks: list[bytes] = []
    lines: list[str] = []
    size = 0
    for event_id, cid, kind, occurred, channel, props in rows:
        line = (
            f"{tenant_id}\t{_field(event_id)}\t{pks[cid]}\t{_field(kind)}\t{_field(occurred)}"
            f"\t{_field(channel)}\t{_field(props)}\n"
        )
        lines.append(line)
        size += len(line)
        if size >= COPY_BLOCK:
            blocks.append("".join(lines).encode())
            lines, size = [], 0
    if lines:
        blocks.append("".join(lines).encode())
    return blocks


def copy_ceiling(url: str, blocks: list[bytes]) -> float:
    """Seconds to COPY the blocks into ``event`` and commit: the raw bulk ceiling."""
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY event ({EVENT_COLUMNS}) FROM STDIN") as cp:
            for block in blocks:
                cp.write(block)
        conn.commit()
        return time.perf_counter() - started


@dataclass
class BatchResult:
    seconds: float
    accepted: int
    failures: list[str] = field(default_factory=list)


def post_batches(base: str, key: str, bodies: list[bytes], threads: int) -> BatchResult:
    """POST every body to /v1/events from ``threads`` clients; wall time until the last answer."""
    next_index = itertools.count()
    headers = {**JSON, "Authorization": f"Bearer {key}"}

    def client() -> tuple[int, list[str]]:
        accepted, failures = 0, []
        with httpx.Client(base_url=base, headers=headers, timeout=300) as http:
            while (i := next(next_index)) < len(bodies):
                response = http.post("/v1/events", content=bodies[i])
                if response.status_code == 200:
                    accepted += int(response.json()["accepted"])
                else:
                    failures.append(f"{response.status_code} {response.text[:200]}")
        return accepted, failures

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(lambda _: client(), range(threads)))
    seconds = time.perf_counter() - started
    return BatchResult(
        seconds,
        sum(a for a, _ in outcomes),
        [f for _, failures in outcomes for f in failures],
    )


@dataclass
class ImportResult:
    seconds: float
    accepted: int
    rejected: int
    rss: RssSampler
    failure: str | None = None


def import_file(base: str, key: str, path: Path, server_pid: int) -> ImportResult:
    """Stream the JSONL file to /v1/import/events in 1 MiB chunks, sampling the API's RSS."""
    headers = {**NDJSON, "Authorization": f"Bearer {key}"}
    with RssSampler(server_pid) as rss, httpx.Client(timeout=1200) as http:
        started = time.perf_counter()
        response = http.post(f"{base}/v1/import/events", content=file_chunks(path), headers=headers)
        seconds = time.perf_counter() - started
    if response.status_code != 200:
        return ImportResult(seconds, 0, 0, rss, f"{response.status_code} {response.text[:300]}")
    answer = response.json()
    return ImportResult(seconds, int(answer["accepted"]), int(answer["rejected_count"]), rss)


@dataclass
class LoadResult:
    """A closed-loop load: ``warmup`` seconds unmeasured, then ``window`` seconds measured."""

    window: float
    latencies: list[float] = field(default_factory=list)  # of operations ended in the window
    ok_total: int = 0  # every successful operation, warm-up and tail included
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.window

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def raw_inserts(
    url: str,
    tenant_id: int,
    pks: dict[str, int],
    concurrency: int,
    warmup: float,
    duration: float,
    seed: int,
) -> LoadResult:
    """One INSERT per transaction (autocommit, synchronous_commit as configured) per thread."""
    result = LoadResult(window=duration)
    lock = threading.Lock()
    connections = [psycopg.connect(url, autocommit=True) for _ in range(concurrency)]
    start = time.perf_counter() + 0.2
    measure_from, stop_at = start + warmup, start + warmup + duration

    def worker(n: int) -> None:
        conn = connections[n]
        latencies: list[float] = []
        ok = 0
        events = iter_events(10**9, seed * 1000 + n, CUSTOMERS)
        time.sleep(max(0.0, start - time.perf_counter()))
        while (began := time.perf_counter()) < stop_at:
            e = _row(next(events))
            conn.execute(INSERT_ONE, (tenant_id, e[0], pks[e[1]], e[2], e[3], e[4], e[5]))
            ended = time.perf_counter()
            ok += 1
            if measure_from <= ended < stop_at:
                latencies.append(ended - began)
        with lock:
            result.latencies += latencies
            result.ok_total += ok

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(worker, range(concurrency)))
    finally:
        for conn in connections:
            conn.close()
    return result
