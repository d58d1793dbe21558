"""An API process's recent decisions, written again only when Redis lost its data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.personalize.cache import DECISION_STREAM, decision_key
from services.personalize.serving.replay import DecisionReplay
from tests.personalize.test_decision_log import DurableRedis

pytestmark = pytest.mark.integration


def _replay() -> DecisionReplay:
    return DecisionReplay(window_s=30, max_records=100, ttl_s=60)


def _stream(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[bytes]:
    return [fields[b"d"] for _, fields in entries]


def test_kept_decisions_are_written_again_once_redis_lost_its_data(redis_url: str) -> None:
    async def scenario() -> None:
        redis = Redis.from_url(redis_url, db=7)  # a database of its own: it is flushed
        await redis.flushdb()
        first, other = _replay(), _replay()
        assert await first.check(redis) == 0
        assert await other.check(redis) == 0
        first.keep(tenant_id=1, decision_id="d1", record=b"r1")
        failed = first.keep(tenant_id=1, decision_id="d2", record=b"r2")
        first.drop(failed)  # its answer came from the fallback: not ours to replay
        other.keep(tenant_id=2, decision_id="d3", record=b"r3")
        # Redis kept its data: nothing is written again.
        assert await first.check(redis) == 0
        assert await other.check(redis) == 0
        assert await redis.xlen(DECISION_STREAM) == 0

        await redis.flushdb()  # Redis lost its data
        assert await first.check(redis) == 1  # it notices and sets a new epoch
        assert await other.check(redis) == 1  # the new epoch is not the one it knew
        assert sorted(_stream(await redis.xrange(DECISION_STREAM))) == [b"r1", b"r3"]
        assert await redis.get(decision_key(1, "d1")) == b"r1"  # feedback finds it early
        assert await first.check(redis) == 0
        assert await other.check(redis) == 0
        await redis.flushdb()
        await redis.aclose()

    asyncio.run(scenario())


def test_only_the_window_and_at_most_the_limit_are_kept(redis_url: str) -> None:
    async def scenario() -> None:
        redis = Redis.from_url(redis_url, db=7)
        await redis.flushdb()
        replay = DecisionReplay(window_s=0.2, max_records=3, ttl_s=60)
        await replay.check(redis)
        for i in range(5):
            replay.keep(tenant_id=1, decision_id=f"d{i}", record=f"r{i}".encode())
        assert len(replay) == 3
        await redis.flushdb()
        assert await replay.check(redis) == 3
        assert _stream(await redis.xrange(DECISION_STREAM)) == [b"r2", b"r3", b"r4"]
        await asyncio.sleep(0.3)
        await redis.flushdb()
        assert await replay.check(redis) == 0  # older than the window: drained by now
        await redis.aclose()

    asyncio.run(scenario())


def test_kept_decisions_are_written_again_after_a_restart_that_kept_the_epoch(
    tmp_path: Path,
) -> None:
    """A SIGKILLed Redis with AOF ``everysec`` comes back with its keys (the epoch too) but
    may miss its last writes: a new server run id is enough to write the records again."""
    server = DurableRedis(tmp_path)

    async def check(replay: DecisionReplay) -> int:
        redis = Redis.from_url(server.url)
        try:
            return await replay.check(redis)
        finally:
            await redis.aclose()

    try:
        replay = _replay()
        assert asyncio.run(check(replay)) == 0
        replay.keep(tenant_id=1, decision_id="d1", record=b"r1")
        assert asyncio.run(check(replay)) == 0
        server.crash_and_restart()
        assert asyncio.run(check(replay)) == 1
        assert asyncio.run(check(replay)) == 0
    finally:
        server.stop()
