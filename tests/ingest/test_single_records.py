"""One record per request, many at once: each answered for itself, stored exactly once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from services.ingest.records.batcher import GroupCommitter, KeyRevokedError, Submitted
from services.ingest.records.schemas import EventIn, RecordKind
from services.ingest.records.service import Outcome
from shared.auth import Principal, revoke_api_key
from shared.db import session_scope
from shared.web.deps import Database, RateLimiter
from shared.web.errors import ApiError
from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of
from tests.support.servers import private_redis

pytestmark = pytest.mark.integration


def event(event_id: str, customer_id: str = "c-1") -> dict[str, object]:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "type": "page_view",
        "occurred_at": "2026-10-30T18:02:11Z",
        "channel": "web",
        "properties": {"path": "/"},
    }


def test_concurrent_single_posts_with_duplicates_are_each_answered_and_stored_once(
    api: str, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    ids = [f"e-{n}" for n in range(150)] + [f"e-{n}" for n in range(0, 150, 3)]  # 50 twice

    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=api, timeout=60, limits=limits) as client:
            return await asyncio.gather(
                *(
                    client.post("/v1/events", json=event(i, f"c-{n % 7}"), headers=auth(key))
                    for n, i in enumerate(ids)
                )
            )

    responses = asyncio.run(post_all())
    assert [r.status_code for r in responses] == [200] * len(ids)
    accepted: dict[str, int] = {}
    for event_id, response in zip(ids, responses, strict=True):
        body = response.json()
        assert body["accepted"] + body["duplicates"] == 1, body
        accepted[event_id] = accepted.get(event_id, 0) + body["accepted"]
    assert accepted == {f"e-{n}": 1 for n in range(150)}  # exactly one "accepted" per id
    tenant = tenant_of(engine, key)
    assert count(engine, "event", tenant) == 150
    assert count(engine, "customer", tenant) == 7


def test_a_revoked_key_is_refused_on_its_next_single_record(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    assert client.post("/v1/events", json=event("e-1"), headers=auth(key)).status_code == 200
    with session_scope(engine) as session:
        assert revoke_api_key(session, prefix=key.split("_")[1])
    refused = client.post("/v1/events", json=event("e-2"), headers=auth(key))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    batch = client.post("/v1/events", json=[event("e-3"), event("e-4")], headers=auth(key))
    assert batch.status_code == 401
    assert count(engine, "event", tenant_of(engine, key)) == 1


def test_a_revoked_key_without_the_scope_is_a_401_not_a_403(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("segments:read")
    assert client.post("/v1/events", json=event("e-1"), headers=auth(key)).status_code == 403
    with session_scope(engine) as session:  # within the 2 s that the key stays cached
        assert revoke_api_key(session, prefix=key.split("_")[1])
    refused = client.post("/v1/events", json=event("e-2"), headers=auth(key))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"


@pytest.fixture
def poisoned_event(engine: Engine) -> Iterator[str]:
    """An event id that Postgres refuses to store (a trigger), as a broken row would be."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN IF NEW.event_id = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON event "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )
        )
    yield "poison"
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse_poison ON event"))
        conn.execute(text("DROP FUNCTION refuse_poison()"))


def _submitted(engine: Engine, key: str, event_id: str) -> Submitted:
    prefix = key.split("_")[1]
    with engine.connect() as conn:
        key_id, tenant_id = conn.execute(
            text("SELECT id, tenant_id FROM api_key WHERE prefix = :p"), {"p": prefix}
        ).one()
    return Submitted(key_id, tenant_id, RecordKind.EVENTS, EventIn.model_validate(event(event_id)))


def test_a_group_whose_transaction_fails_stores_the_others_and_answers_each(
    engine: Engine, make_key: MakeKey, poisoned_event: str
) -> None:
    key, revoked = make_key(), make_key()
    with session_scope(engine) as session:
        revoke_api_key(session, prefix=revoked.split("_")[1])
    ids = ["first", "a", "b", poisoned_event, "a", "c"]
    items = [_submitted(engine, key, i) for i in ids] + [_submitted(engine, revoked, "d")]

    async def store_all() -> list[Outcome | BaseException]:
        committer = GroupCommitter(Database(engine, 4), "secret", max_inflight=1)
        # The first record goes alone; the rest wait for it and share the next transaction.
        answers = await asyncio.gather(
            *(committer.store(item) for item in items), return_exceptions=True
        )
        await committer.aclose()
        return answers

    answers = asyncio.run(store_all())
    assert answers[:3] == [Outcome.ACCEPTED] * 3
    assert isinstance(answers[3], DBAPIError)
    assert answers[4:6] == [Outcome.DUPLICATE, Outcome.ACCEPTED]
    assert isinstance(answers[6], KeyRevokedError)
    tenant = tenant_of(engine, key)
    assert count(engine, "event", tenant) == 4
    assert count(engine, "event", tenant, "event_id = :e", e=poisoned_event) == 0
    assert count(engine, "event", tenant_of(engine, revoked)) == 0


def test_a_group_of_duplicates_is_one_row_and_one_acceptance(
    engine: Engine, make_key: MakeKey
) -> None:
    key = make_key()
    items = [_submitted(engine, key, "same") for _ in range(5)]

    async def store_all() -> list[Outcome]:
        committer = GroupCommitter(Database(engine, 4), "secret", max_inflight=1)
        return list(await asyncio.gather(*(committer.store(item) for item in items)))

    answers = asyncio.run(store_all())
    assert sorted(answers) == sorted([Outcome.ACCEPTED] + [Outcome.DUPLICATE] * 4)
    assert count(engine, "event", tenant_of(engine, key)) == 1


def test_leased_rate_limits_hold_across_processes(redis_url: str) -> None:
    principal = Principal(
        key_id=987_654, tenant_id=1, client="t", scopes=frozenset(), rate_limit_per_minute=500
    )

    async def spend() -> tuple[int, list[ApiError]]:
        redis = Redis.from_url(redis_url)
        await redis.delete(*await redis.keys("segmenta:ratelimit:987654:*") or ["none"])
        processes = [RateLimiter(redis, 6_000), RateLimiter(redis, 6_000)]
        allowed, refused = 0, []
        for n in range(600):
            try:
                await processes[n % 2].check(principal)
                allowed += 1
            except ApiError as exc:
                refused.append(exc)
        await redis.aclose()
        return allowed, refused

    allowed, refused = asyncio.run(spend())
    # Each process leases 5 requests at a time; at most one lease each goes unspent.
    assert 490 <= allowed <= 500
    assert allowed + len(refused) == 600
    assert {exc.status_code for exc in refused} == {429}
    assert all(1 <= int((exc.headers or {})["Retry-After"]) <= 60 for exc in refused)


def test_a_busy_key_does_not_wait_for_redis_while_its_lease_lasts(
    tmp_path: Path,
) -> None:
    """The lease is topped up in the background once half spent: with Redis answering
    nothing for a while, the key's next requests still go through at once."""
    principal = Principal(
        key_id=123_456, tenant_id=1, client="t", scopes=frozenset(), rate_limit_per_minute=60_000
    )

    async def spend() -> int:
        with private_redis(tmp_path) as url:
            redis = Redis.from_url(url)
            admin = Redis.from_url(url)
            limiter = RateLimiter(redis, 6_000)  # leases of 100 requests
            for _ in range(60):  # past half of the first lease: the top-up goes out
                await limiter.check(principal)
            await asyncio.sleep(0.2)  # (it is answered)
            await admin.execute_command("CLIENT", "PAUSE", 3_000, "WRITE")
            passed = 0
            try:
                async with asyncio.timeout(1.5):
                    for _ in range(100):
                        await limiter.check(principal)
                        passed += 1
            except TimeoutError:
                pass
            await admin.execute_command("CLIENT", "UNPAUSE")
            await asyncio.sleep(0.1)  # the next top-up, asked during the pause, ends
            await redis.aclose()
            await admin.aclose()
            return passed

    # 40 left of the first lease and 100 of the second: every one without a round trip.
    assert asyncio.run(spend()) == 100


def test_a_key_checked_as_the_minute_turns_does_not_hang_the_api(tmp_path: Path) -> None:
    """The last minute's lease fetch can be finished but not yet cleared when a request of
    the new minute checks the key (its clean-up waits for a turn of the event loop): the
    check must start the new minute's fetch, not await the finished one again and again
    (awaiting a finished future never yields: the loop, and so the API, stood still)."""
    principal = Principal(
        key_id=123_457, tenant_id=1, client="t", scopes=frozenset(), rate_limit_per_minute=60_000
    )
    minute = 29_000_000 * 60.0
    outcome: list[str] = []

    async def across_the_minute() -> None:
        with private_redis(tmp_path) as url:
            redis = Redis.from_url(url)
            limiter = RateLimiter(redis, 6_000)
            with patch("shared.web.deps.time.time", return_value=minute - 0.5):
                await limiter.check(principal)
            finished = asyncio.get_running_loop().create_future()
            finished.set_result(True)  # the last minute's fetch: done, not yet cleared
            limiter._fetches._calls[principal.key_id] = finished
            with patch("shared.web.deps.time.time", return_value=minute + 0.5):
                await limiter.check(principal)
            outcome.append("checked")
            await redis.aclose()

    runner = threading.Thread(target=asyncio.run, args=(across_the_minute(),), daemon=True)
    runner.start()
    runner.join(timeout=10)
    assert outcome == ["checked"]


def test_single_records_are_stored_after_postgres_drops_the_api_connections(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    assert client.post("/v1/events", json=event("e-1"), headers=auth(key)).status_code == 200
    with engine.connect() as conn:  # what a Postgres restart does to the pooled connections
        dropped = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = 'segmenta'"
            )
        ).scalar_one()
    assert dropped > 0
    again = client.post("/v1/events", json=event("e-2"), headers=auth(key))
    assert again.status_code == 200, again.text
    assert again.json()["accepted"] == 1
    assert count(engine, "event", tenant_of(engine, key)) == 2
