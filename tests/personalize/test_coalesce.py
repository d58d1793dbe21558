"""Concurrent requests' Redis commands share pipelines, yet each gets its own replies."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.personalize.serving.coalesce import Coalescer

pytestmark = pytest.mark.integration


def test_each_request_gets_its_own_replies_and_errors(redis_url: str) -> None:
    async def scenario() -> None:
        redis = Redis.from_url(redis_url)
        coalescer = Coalescer(redis)
        await redis.delete(*(f"coalesce:{i}" for i in range(200)))

        async def one(i: int) -> list[object]:
            return await coalescer.execute(
                ("SET", f"coalesce:{i}", str(i)), ("GET", f"coalesce:{i}")
            )

        replies = await asyncio.gather(*(one(i) for i in range(200)))
        assert [r[1] for r in replies] == [str(i).encode() for i in range(200)]
        good, bad = await asyncio.gather(
            coalescer.execute(("GET", "coalesce:7")),
            coalescer.execute(("HGETALL", "coalesce:7")),  # a string, not a hash
        )
        assert good == [b"7"]
        assert isinstance(bad[0], ResponseError)
        await redis.delete(*(f"coalesce:{i}" for i in range(200)))
        await redis.aclose()

    asyncio.run(scenario())


def test_a_broken_connection_fails_every_waiting_request() -> None:
    async def scenario() -> None:
        coalescer = Coalescer(Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
        results = await asyncio.gather(
            *(coalescer.execute(("GET", "k")) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, RedisConnectionError) for r in results)

    asyncio.run(scenario())


def test_a_connection_redis_closed_while_idle_is_replaced_without_failing_requests(
    redis_url: str,
) -> None:
    async def scenario() -> None:
        redis = Redis.from_url(redis_url)
        coalescer = Coalescer(redis)
        await redis.set("coalesce:idle", "1")
        (own,) = await coalescer.execute(("CLIENT", "ID"))  # its connection, now idle
        await redis.execute_command("CLIENT", "KILL", "ID", own)
        assert await coalescer.execute(("GET", "coalesce:idle")) == [b"1"]
        await redis.delete("coalesce:idle")
        await coalescer.aclose()
        await redis.aclose()

    asyncio.run(scenario())


def test_a_redis_that_never_answers_fails_every_waiting_request_within_the_timeout() -> None:
    async def scenario() -> None:
        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(-1)  # takes the commands, answers nothing
            writer.close()

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        coalescer = Coalescer(Redis(host="127.0.0.1", port=port, socket_timeout=0.5))
        started = time.monotonic()
        results = await asyncio.gather(
            *(coalescer.execute(("GET", "k")) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        assert time.monotonic() - started < 5
        server.close()

    asyncio.run(scenario())
