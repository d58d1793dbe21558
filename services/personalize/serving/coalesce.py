"""Redis commands of concurrent requests, sent together: one pipeline per loop turn.

Each storefront answer needs two round trips to Redis (read the visitor and the placement,
then log the decision). Under load, many requests wait for Redis at the same moment; sent
one pipeline each, every request pays its own syscalls and parsing set-up. Here the
commands that requests queue during one turn of the event loop go out as one pipeline,
and each request gets back its own replies (or its own error) — the same answers, the same
acknowledgement (a request resumes only after Redis replied to its commands), fewer trips.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

Command = tuple[Any, ...]  # ("HGETALL", key), ("XADD", stream, "*", "d", record), ...


class Coalescer:
    def __init__(self, redis: Redis, max_commands: int = 2_000) -> None:
        self.redis = redis
        self.max_commands = max_commands
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
        pipe = self.redis.pipeline(transaction=False)
        for commands, _ in batch:
            for command in commands:
                pipe.execute_command(*command)
        try:
            replies = await pipe.execute(raise_on_error=False)
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
