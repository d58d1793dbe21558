"""Request dependencies: settings, engine, the caller's key and its scopes, rate limits."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlmodel import Session

from shared.auth import Principal, Scope, authenticate
from shared.settings import Settings
from shared.web.errors import ApiError

T = TypeVar("T")


class ThreadLane:
    """Runs blocking work in threads, at most ``slots`` pieces at once; the rest wait."""

    def __init__(self, slots: int) -> None:
        self._limiter = CapacityLimiter(slots)

    async def run(self, work: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(work, *args, limiter=self._limiter)


class Database(ThreadLane):
    """The engine, and how many requests may use it at once.

    Blocking database work runs in threads. Were more threads than pooled connections
    to run at once, the extra ones would open and close overflow connections per request
    (a process fork on the Postgres side each time) or wait for the pool while holding a
    thread; so requests beyond the pool's size wait here, in the event loop, instead.
    """

    def __init__(self, engine: Engine, slots: int) -> None:
        super().__init__(slots)
        self.engine = engine


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
DatabaseDep = Annotated[Database, Depends(get_database)]
RedisDep = Annotated[Redis, Depends(get_redis)]


def get_session(engine: EngineDep) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sgm_...`")


def _authenticate(engine: Engine, raw_key: str) -> Principal | None:
    # A session of its own, closed before the request goes on: holding its connection
    # while the request takes a second one starves the pool under concurrent load.
    with Session(engine) as session:
        return authenticate(session, raw_key)


async def get_principal(
    database: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    principal = (
        await database.run(_authenticate, database.engine, credentials.credentials)
        if credentials
        else None
    )
    if principal is None:
        raise ApiError(
            401,
            "a valid API key is required",
            errors=[{"field": "Authorization", "message": "missing, unknown or revoked key"}],
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def enforce_rate_limit(principal: Principal, redis: Redis, default_per_minute: int) -> None:
    """Fixed one-minute windows per key in Redis; a Redis outage does not stop ingestion."""
    limit = principal.rate_limit_per_minute or default_per_minute
    now = time.time()
    key = f"segmenta:ratelimit:{principal.key_id}:{int(now // 60)}"
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
    except (RedisError, OSError):
        return
    if count > limit:
        retry_after = max(1, math.ceil(60 - now % 60))
        raise ApiError(
            429,
            f"rate limit of {limit} requests per minute exceeded for this key",
            headers={"Retry-After": str(retry_after)},
        )


def require(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller holds one of ``scopes`` (or admin) and is within its quota."""
    names = ", ".join(s.value for s in scopes)

    async def dependency(
        principal: PrincipalDep, redis: RedisDep, settings: SettingsDep
    ) -> Principal:
        if not principal.allows(*scopes):
            raise ApiError(403, f"this key lacks the scope for this operation ({names})")
        await enforce_rate_limit(principal, redis, settings.rate_limit_per_minute)
        return principal

    return dependency
