"""Redis commands of concurrent requests, sent together: one pipeline per loop turn.

Each storefront answer needs two round trips to Redis (read the visitor and the placement,
then log the decision). Under load, many requests wait for Redis at the same moment; sent
one pipeline each, every request pays its own syscalls and parsing set-up. Here the
commands that requests queue during one turn of the event loop go out as one pipeline,
and each request gets back its own replies (or its own error) — the same answers, the same
acknowledgement (a request resumes only after Redis replied to its commands), fewer trips.

The round trip itself is leaner than a redis-py pipeline: connections of its own, kept
between trips; the commands packed at once; one deadline (the client's ``socket_timeout``)
for the whole trip instead of a timer per reply and a task per write; replies turned into
Python values by the client's own response callbacks, as a pipeline does.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = tuple[Any, ...]  # ("HGETALL", key), ("XADD", stream, "*", "d", record), ...


class _ClosedWhileIdleError(RedisConnectionError):
    """The connection broke before any reply came back."""


def _arg(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode()
    raise DataError(f"cannot send a {type(value).__name__} to Redis")


def pack(commands: list[Command]) -> bytes:
    """``commands`` in the Redis protocol (RESP), as one buffer."""
    parts: list[bytes] = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for value in map(_arg, command):
            parts.append(b"$%d\r\n%b\r\n" % (len(value), value))
    return b"".join(parts)


class Coalescer:
    def __init__(self, redis: Redis, max_commands: int = 2_000) -> None:
        self.redis = redis
        self.max_commands = max_commands
        settings = dict(redis.connection_pool.connection_kwargs)
        self.timeout_s: float | None = settings.pop("socket_timeout", None)
        self._connection = partial(redis.connection_pool.connection_class, **settings)
        self._idle: list[AbstractConnection] = []
        self._callbacks = redis.response_callbacks
        self._waiting: list[tuple[list[Command], asyncio.Future[list[Any]]]] = []
        self._queued = 0
        self._flush_scheduled = False
        self._flushing: set[asyncio.Task[None]] = set()  # held until done (no early GC)

    async def execute(self, *commands: Command) -> list[Any]:
        """The replies to ``commands``, in order; a failed command's reply is its error."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(commands), future))
        self._queued += len(commands)
        if self._queued >= self.max_commands:
            self._start_flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        batch, self._waiting, self._queued = self._waiting, [], 0
        self._flush_scheduled = False
        if batch:
            task = asyncio.ensure_future(self._flush(batch))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _flush(self, batch: list[tuple[list[Command], asyncio.Future[list[Any]]]]) -> None:
        try:
            replies = await self._round_trip([c for commands, _ in batch for c in commands])
        except BaseException as exc:  # the connection failed: every request hears of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for commands, future in batch:
            if not future.done():
                future.set_result(replies[start : start + len(commands)])
            start += len(commands)

    async def _round_trip(self, commands: list[Command]) -> list[Any]:
        if not self._idle:
            return await self._trip(self._connection(), commands)
        try:
            return await self._trip(self._idle.pop(), commands, reused=True)
        except _ClosedWhileIdleError:  # Redis closed it meanwhile (a restart): Redis got nothing
            return await self._trip(self._connection(), commands)

    async def _trip(
        self, connection: AbstractConnection, commands: list[Command], *, reused: bool = False
    ) -> list[Any]:
        replies: list[Any] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                await connection.send_packed_command(pack(commands), check_health=False)
                for command in commands:
                    replies.append(await self._reply(connection, command[0]))
        except BaseException as exc:
            await connection.disconnect(nowait=True)  # replies may be left unread on it
            if isinstance(exc, TimeoutError) and not isinstance(exc, RedisError):
                raise RedisTimeoutError(f"no reply from Redis within {self.timeout_s} s") from exc
            if reused and isinstance(exc, RedisConnectionError) and not replies:
                raise _ClosedWhileIdleError() from exc
            raise
        self._idle.append(connection)
        return replies

    async def _reply(self, connection: AbstractConnection, name: str) -> Any:
        try:
            reply = await connection.read_response()
        except ResponseError as exc:
            return exc
        callback = self._callbacks.get(name)
        return reply if callback is None else callback(reply)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.disconnect()
