"""Loads for ``bench.personalize``: the storefront's GETs, feedback batches and their COPY
ceiling, and the learning lag under a steady feedback rate."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import psycopg
from redis import Redis

from bench.loads import JSON, LoadResult
from services.personalize.cache import placement_key

FEEDBACK_COLUMNS = (
    "tenant_id, event_id, decision_id, subject_hash, customer_pk, offer_id, kind, value, "
    "occurred_at"
)


class RawGetter:
    """One HTTP/1.1 keep-alive connection sending GETs (see ``bench.http.RawSender``)."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        lines = [f"Host: {parts.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
        self.tail = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(b"GET %s HTTP/1.1\r\n" % path.encode() + self.tail)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            fields = dict(
                line.split(b":", 1) for line in head.lower().split(b"\r\n")[1:] if b":" in line
            )
            payload = await self.reader.readexactly(int(fields[b"content-length"]))
        except (OSError, asyncio.IncompleteReadError, KeyError, ValueError):
            await self.close()
            raise
        return int(head[9:12]), payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def offer_gets(
    base: str,
    key: str | None,
    customers: Sequence[str],
    concurrency: int,
    warmup: float,
    duration: float,
    seed: int,
) -> LoadResult:
    """``concurrency`` connections asking ``GET /v1/offers/{id}?placement=home`` back to
    back for random customers; requests ending in the window after ``warmup`` measured."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return asyncio.run(_gets(base, headers, customers, concurrency, warmup, duration, seed))


async def _gets(
    base: str,
    headers: dict[str, str],
    customers: Sequence[str],
    concurrency: int,
    warmup: float,
    duration: float,
    seed: int,
) -> LoadResult:
    result = LoadResult(window=duration)
    rng = random.Random(seed)
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def connection() -> None:
        getter = RawGetter(base, headers)
        try:
            while (began := time.perf_counter()) < stop_at:
                path = f"/v1/offers/{rng.choice(customers)}?placement=home"
                try:
                    status, payload = await getter.get(path)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    result.errors.append(repr(exc))
                    continue
                ended = time.perf_counter()
                if status != 200:
                    result.errors.append(f"{status} {payload[:200].decode(errors='replace')}")
                    continue
                result.ok_total += 1
                if measure_from <= ended < stop_at:
                    result.latencies.append(ended - began)
        finally:
            await getter.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return result


@dataclass(frozen=True)
class Logged:
    """A logged decision to send feedback about (its first shown offer)."""

    decision_id: str
    offer_id: str
    subject_hash: str
    customer_pk: int | None


def logged_decisions(url: str, tenant_id: int, limit: int) -> list[Logged]:
    """Decisions the bandit chose (personalised, so their conversions are learnt) and
    nobody converted yet (a second conversion of a decision is not learnt again)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT decision_id, offers -> 0 ->> 'offer_id', subject_hash, customer_pk "
            "FROM decision WHERE tenant_id = %s AND strategy = 'bandit' AND personalised "
            "AND jsonb_array_length(offers) > 0 AND NOT EXISTS (SELECT 1 FROM feedback f "
            "WHERE f.decision_id = decision.decision_id AND f.kind = 'conversion') "
            "ORDER BY random() LIMIT %s",
            (tenant_id, limit),
        ).fetchall()
    return [Logged(*row) for row in rows]


def feedback_events(decisions: Sequence[Logged], prefix: str, kind: str) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{prefix}-{i}",
            "decision_id": d.decision_id,
            "offer_id": d.offer_id,
            "kind": kind,
            "value": 42.0,
        }
        for i, d in enumerate(decisions)
    ]


def copy_feedback(url: str, tenant_id: int, decisions: Sequence[Logged], prefix: str) -> float:
    """Seconds to COPY the same feedback rows straight into ``feedback`` and commit."""
    null = r"\N"
    lines = [
        f"{tenant_id}\t{prefix}-{i}\t{d.decision_id}\t{d.subject_hash}\t"
        f"{d.customer_pk if d.customer_pk is not None else null}\t{d.offer_id}\tclick\t42.0\t"
        "2026-01-01T00:00:00+00:00\n"
        for i, d in enumerate(decisions)
    ]
    block = "".join(lines).encode()
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY feedback ({FEEDBACK_COLUMNS}) FROM STDIN") as copy,
        ):
            copy.write(block)
        conn.commit()
        return time.perf_counter() - started


@dataclass
class Posted:
    seconds: float
    accepted: int
    failures: list[str] = field(default_factory=list)


def post_feedback(base: str, key: str, bodies: list[bytes], threads: int) -> Posted:
    """POST every body to /v1/feedback from ``threads`` clients; wall time to the last answer."""
    next_index = itertools.count()
    headers = {**JSON, "Authorization": f"Bearer {key}"}

    def client() -> tuple[int, list[str]]:
        accepted, failures = 0, []
        with httpx.Client(base_url=base, headers=headers, timeout=300) as http:
            while (i := next(next_index)) < len(bodies):
                response = http.post("/v1/feedback", content=bodies[i])
                if response.status_code == 200:
                    accepted += int(response.json()["accepted"])
                else:
                    failures.append(f"{response.status_code} {response.text[:200]}")
        return accepted, failures

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(lambda _: client(), range(threads)))
    return Posted(
        time.perf_counter() - started,
        sum(a for a, _ in outcomes),
        [f for _, failures in outcomes for f in failures],
    )


def learnt_conversions(redis: Redis, tenant_id: int, placement: str) -> float:
    """The successes the placement's published policy holds (all segments, all offers)."""
    raw = redis.get(placement_key(tenant_id, placement))
    policy = orjson.loads(raw).get("policy") if raw else None  # type: ignore[arg-type]
    if not policy:
        return 0.0
    return float(sum(c[0] for offers in policy["counts"].values() for c in offers.values()))


@dataclass
class Lag:
    lags: list[float]
    sent: int
    accepted: int
    rate: float  # events/s actually sent
    learnt: float  # conversions the snapshot gained


def learning_lag(
    base: str,
    key: str,
    redis_url: str,
    tenant_id: int,
    decisions: Sequence[Logged],
    rate: int,
    run: int,
    tick: float = 0.1,
) -> Lag:
    """Conversions at ``rate`` events/s in batches every ``tick``; for each batch, the time
    from its accepted answer until the Redis snapshot's successes include it."""
    redis = Redis.from_url(redis_url)
    base_line = learnt_conversions(redis, tenant_id, "home")
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), learnt_conversions(redis, tenant_id, "home")))
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    per_batch = max(1, int(rate * tick))
    events = feedback_events(decisions, f"lag{run}", "conversion")  # new ids every run
    marks: list[tuple[float, int]] = []  # (accepted at, cumulative accepted)
    accepted, started = 0, time.perf_counter()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
        for n, start in enumerate(range(0, len(events), per_batch)):
            time.sleep(max(0.0, started + n * tick - time.perf_counter()))
            answer = http.post("/v1/feedback", json=events[start : start + per_batch])
            accepted += int(answer.json()["accepted"]) if answer.status_code == 200 else 0
            marks.append((time.perf_counter(), accepted))
    sending = time.perf_counter() - started
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline and (not samples or samples[-1][1] - base_line < accepted):
        time.sleep(0.1)
    stop.set()
    poller.join()
    lags = []
    for at, cumulative in marks:
        seen = next((t for t, s in samples if t >= at and s - base_line >= cumulative), None)
        lags.append(float("inf") if seen is None else seen - at)
    learnt = samples[-1][1] - base_line if samples else 0.0
    redis.close()
    return Lag(lags, len(events), accepted, len(events) / sending, learnt)
