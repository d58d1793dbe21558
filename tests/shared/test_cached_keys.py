"""The API processes' key cache: a busy key's requests do not wait for its lookups, and a
revoked key still stops being accepted within one cache lifetime."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine, text

from shared.auth import Principal, PrincipalCache, revoke_api_key
from shared.db import session_scope
from shared.web.deps import CachedAuthenticator, Database
from shared.web.errors import ApiError
from shared.web.keygate import KeyGate
from tests.conftest import MakeKey


def _authenticator(engine: Engine, ttl: float) -> CachedAuthenticator:
    return CachedAuthenticator(Database(engine, 2), PrincipalCache(ttl=ttl), KeyGate())


def test_a_busy_key_is_looked_up_again_before_its_entry_expires(
    engine: Engine, make_key: MakeKey
) -> None:
    key = make_key("offers:read")

    async def past_the_first_lifetime() -> Principal | None:
        keys = _authenticator(engine, ttl=1.0)
        assert await keys.authenticate(key) is not None  # looked up: cached for 1 s
        await asyncio.sleep(0.6)
        assert await keys.authenticate(key) is not None  # past half: looked up meanwhile
        await asyncio.sleep(0.6)  # past the first lookup's lifetime
        with engine.connect() as blocker:  # a lookup now would wait for this lock
            blocker.execute(text("LOCK TABLE api_key IN ACCESS EXCLUSIVE MODE"))
            try:
                return await asyncio.wait_for(keys.authenticate(key), timeout=0.5)
            except TimeoutError:
                return None
            finally:
                blocker.rollback()

    principal = asyncio.run(past_the_first_lifetime())
    assert principal is not None  # from the cache, while the lock held every lookup


async def _accepted(keys: CachedAuthenticator, key: str) -> bool | int:
    """True, False (unknown) or the status it was refused with."""
    try:
        return await keys.authenticate(key) is not None
    except ApiError as exc:  # a key found bad is refused by the gate at once
        return exc.status_code


def test_a_revoked_key_is_refused_within_one_cache_lifetime(
    engine: Engine, make_key: MakeKey
) -> None:
    key = make_key("offers:read")

    async def answers() -> list[bool | int]:
        keys = _authenticator(engine, ttl=0.5)
        seen = [await _accepted(keys, key)]
        with session_scope(engine) as session:
            assert revoke_api_key(session, prefix=key.split("_")[1])
        await asyncio.sleep(0.3)  # past half: the key is looked up again, found revoked
        seen.append(await _accepted(keys, key))
        await asyncio.sleep(0.1)
        seen.append(await _accepted(keys, key))
        await asyncio.sleep(0.5)
        seen.append(await _accepted(keys, key))
        return seen

    # Accepted from the cache until the new lookup answered; refused from then on.
    assert asyncio.run(answers()) == [True, True, 401, 401]
