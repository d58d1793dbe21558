"""The single-record load: many keep-alive connections, one event per request.

Two clients. ``raw`` (the default) writes HTTP/1.1 requests on asyncio streams and reads
the answers by ``Content-Length``: a few tens of microseconds of CPU per request, so the
load generator takes little of the CPU that the server under test needs. ``httpx`` uses
one ``httpx.AsyncClient`` per connection; it is the easier client to trust but costs
roughly ten times more CPU per request, and a single client with a 50-connection pool
is slower still (its pool serialises the requests), so it caps what can be measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from bench.loads import CUSTOMERS, LoadResult
from segmenta.demo.event_stream import iter_events

Client = Literal["raw", "httpx"]


class Sender(Protocol):
    async def post(self, body: bytes) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


class RawSender:
    """One HTTP/1.1 keep-alive connection, reconnecting when the server closes it."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.head = ("\r\n".join(lines) + "\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            fields = dict(
                line.split(b":", 1) for line in head.lower().split(b"\r\n")[1:] if b":" in line
            )
            payload = await reader.readexactly(int(fields[b"content-length"]))
        except (OSError, asyncio.IncompleteReadError, KeyError, ValueError):
            await self.close()
            raise
        if fields.get(b"connection", b"").strip() == b"close":
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class HttpxSender:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.client = httpx.AsyncClient(
            headers=headers, timeout=60, limits=httpx.Limits(max_connections=1)
        )

    async def post(self, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post(self.url, content=body)
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


def single_posts(
    url: str,
    key: str | None,
    concurrency: int,
    warmup: float,
    duration: float,
    seed: int,
    client: Client = "raw",
) -> LoadResult:
    """``concurrency`` connections sending one event per request, back to back.

    Requests ending in the ``duration`` after ``warmup`` are measured; the connections
    stop starting requests at the end and finish those in flight.
    """
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return asyncio.run(
        _load(
            url, headers, concurrency, warmup, duration, iter_events(10**9, seed, CUSTOMERS), client
        )
    )


async def _load(
    url: str,
    headers: dict[str, str],
    concurrency: int,
    warmup: float,
    duration: float,
    events: Iterator[dict[str, Any]],
    client: Client,
) -> LoadResult:
    result = LoadResult(window=duration)
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def connection() -> None:
        sender: Sender = RawSender(url, headers) if client == "raw" else HttpxSender(url, headers)
        try:
            while (began := time.perf_counter()) < stop_at:
                try:
                    status, payload = await sender.post(orjson.dumps(next(events)))
                except (OSError, asyncio.IncompleteReadError, httpx.HTTPError) as exc:
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
            await sender.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return result
