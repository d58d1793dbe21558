"""Request dependencies: settings, engine, the caller's key and its scopes, rate limits."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Generic, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.datastructures import State

from shared.auth import Principal, PrincipalCache, Scope, authenticate, well_formed
from shared.db import is_connectivity_error
from shared.settings import Settings
from shared.web.errors import ApiError
from shared.web.keygate import KeyGate, unauthorized

T = TypeVar("T")
K = TypeVar("K")


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


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


# Plain accessors are ``async def``: FastAPI runs a sync dependency in a thread, per request.
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


async def gated_lookup(
    database: Database, gate: KeyGate, raw_key: str, source: str | None
) -> Principal | None:
    """``raw_key``'s principal, looked up only if ``gate`` lets it through (else its 401 or
    429 is raised); a key of the wrong shape is unknown without a lookup."""
    if not well_formed(raw_key):
        return None
    gate.screen(raw_key, source)
    principal = await database.run(_authenticate, database.engine, raw_key)
    gate.note(raw_key, source, principal)
    return principal


def source_of(request: Request) -> str | None:
    return request.client.host if request.client else None


class InFlight(Generic[K, T]):
    """At most one call per key at a time: who asks while it runs shares its future.

    A finished call is never handed out again, even before its clean-up has run: it may
    be stale (a lookup before a revocation, a lease of the minute before), and awaiting a
    finished future does not yield, so a caller looping on it would spin without the
    event loop ever turning again. Each call clears only its own entry, and its error is
    retrieved (it belongs to its awaiters; a call nobody awaits must not log it)."""

    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Future[T]] = {}

    def start(self, key: K, call: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Future[T]:
        running = self._calls.get(key)
        if running is not None and not running.done():
            return running
        future = asyncio.ensure_future(call())
        self._calls[key] = future
        future.add_done_callback(partial(self._finished, key))
        return future

    def _finished(self, key: K, future: asyncio.Future[T]) -> None:
        if self._calls.get(key) is future:
            del self._calls[key]
        if not future.cancelled():
            future.exception()


class CachedAuthenticator:
    """Keys looked up at most once per cache lifetime, however many requests present them.

    A key presented past half its cache lifetime is looked up again in the background
    while its requests go on, so that a busy key's entry does not expire under load (all
    its requests then waited for one lookup: a convoy every lifetime). A revocation still
    reaches the cache within one lifetime.

    Its principals may be revoked since: only for writes that re-check the key in their
    own transaction (``shared.auth.active_key_ids``), which is what keeps a revocation
    effective at once.
    """

    def __init__(self, database: Database, cache: PrincipalCache, gate: KeyGate) -> None:
        self.database = database
        self.cache = cache
        self.gate = gate
        self._lookups: InFlight[str, Principal | None] = InFlight()

    async def authenticate(self, raw_key: str, source: str | None = None) -> Principal | None:
        principal, due = self.cache.get_due(raw_key)
        if principal is not None:
            if due:
                self._start(raw_key, source)
            return principal
        return await asyncio.shield(self._start(raw_key, source))

    def _start(self, raw_key: str, source: str | None) -> asyncio.Future[Principal | None]:
        return self._lookups.start(raw_key, partial(self._lookup, raw_key, source))

    async def _lookup(self, raw_key: str, source: str | None) -> Principal | None:
        try:
            principal = await gated_lookup(self.database, self.gate, raw_key, source)
        except Exception as exc:
            known = self.cache.get_during_outage(raw_key) if is_connectivity_error(exc) else None
            if known is None:
                raise
            return known  # reads go on while Postgres is down; writes fail there anyway
        if principal is not None:
            self.cache.put(raw_key, principal)
        else:  # revoked (or never known): no request may go on with the cached principal
            self.cache.discard(raw_key)
        return principal


BEARER_SECURITY: list[dict[str, list[str]]] = [{type(_bearer).__name__: []}]


def bearer_credentials(authorization: str) -> str | None:
    """The credentials of ``Authorization: Bearer <credentials>``, as ``_bearer`` reads them."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_principal(
    request: Request, database: DatabaseDep, credentials: Credentials
) -> Principal:
    gate: KeyGate = request.app.state.key_gate
    principal = (
        await gated_lookup(database, gate, credentials.credentials, source_of(request))
        if credentials
        else None
    )
    if principal is None:
        raise unauthorized()
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass
class _Lease:
    window: int
    size: int
    left: int = 0
    exhausted: bool = False  # Redis granted the last of the window: no more to ask for


class RateLimiter:
    """Fixed one-minute windows per key, counted in Redis so that all processes share them.

    A process takes its quota from Redis in leases of up to 1% of the limit (one request
    at a time for small limits, so they stay exact) and spends them locally, sparing most
    requests a round trip; at worst the leases of other processes go unspent in a window.
    A lease half spent is topped up in the background, so that under steady load no
    request waits for Redis; requests that find it spent all wait for the one fetch in
    flight and resume together (one at a time behind a lock, the last of them waited for
    as many turns of the event loop as there were requests before it). A Redis outage
    does not stop ingestion.
    """

    def __init__(self, redis: Redis, default_per_minute: int, max_lease: int = 100) -> None:
        self.redis = redis
        self.default_per_minute = default_per_minute
        self.max_lease = max_lease
        self._leases: dict[int, _Lease] = {}
        self._fetches: InFlight[int, bool] = InFlight()

    def _spend(self, principal: Principal, window: int) -> bool | None:
        """True if a leased request was left; False if the window is spent; None: ask Redis."""
        lease = self._leases.get(principal.key_id)
        if lease is None or lease.window != window:
            return None
        if lease.left > 0:
            lease.left -= 1
            if lease.left < lease.size // 2 and not lease.exhausted:
                self._fetch(principal, window)  # the top-up, in the background (once)
            return True
        return False if lease.exhausted else None

    async def check(self, principal: Principal) -> None:
        now = time.time()
        window = int(now // 60)
        spent = self._spend(principal, window)
        while spent is None:
            if not await asyncio.shield(self._fetch(principal, window)):
                spent = True  # Redis unreachable: the request goes on
            else:
                spent = self._spend(principal, window)
        if not spent:
            limit = principal.rate_limit_per_minute or self.default_per_minute
            raise ApiError(
                429,
                f"rate limit of {limit} requests per minute exceeded for this key",
                headers={"Retry-After": str(max(1, math.ceil(60 - now % 60)))},
            )

    def _fetch(self, principal: Principal, window: int) -> asyncio.Future[bool]:
        """The key's lease fetch in flight, started if there is none."""
        return self._fetches.start(principal.key_id, partial(self._lease, principal, window))

    async def _lease(self, principal: Principal, window: int) -> bool:
        """Adds the next lease of ``window`` from Redis to this process's; False when
        Redis could not be asked."""
        limit = principal.rate_limit_per_minute or self.default_per_minute
        size = max(1, min(self.max_lease, limit // 100))
        key = f"segmenta:ratelimit:{principal.key_id}:{window}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(key, size)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
        except (RedisError, OSError):
            return False
        granted = max(0, min(size, limit - (int(count) - size)))
        lease = self._leases.get(principal.key_id)
        if lease is None or lease.window != window:
            if len(self._leases) > 10_000:
                self._leases.clear()
            lease = self._leases[principal.key_id] = _Lease(window, size)
        lease.left += granted
        lease.exhausted = granted < size  # the count passed the limit with this lease
        return True


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


ScopeCheck = Callable[[Principal], None]


def scope_check(*scopes: Scope) -> ScopeCheck:
    """Refuses (403) a principal that holds none of ``scopes`` (nor admin)."""
    names = ", ".join(s.value for s in scopes)

    def check(principal: Principal) -> None:
        if not principal.allows(*scopes):
            raise ApiError(403, f"this key lacks the scope for this operation ({names})")

    return check


async def cached_principal(
    state: State, authorization: str, check: ScopeCheck, source: str | None = None
) -> Principal:
    """The caller of ``Authorization: <authorization>`` (from address ``source``) through
    the app's ``CachedAuthenticator``, checked by ``check`` and within its rate limit."""
    authenticator: CachedAuthenticator = state.authenticator
    token = bearer_credentials(authorization)
    principal = await authenticator.authenticate(token, source) if token else None
    if principal is None:
        raise unauthorized()
    try:
        check(principal)
    except ApiError:
        # A cached key may have been revoked since, and a revoked key is unknown (401), not
        # short of a scope: refusals are rare enough to ask the database again.
        authenticator.cache.forget(principal.key_id)
        principal = await authenticator.authenticate(token, source) if token else None
        if principal is None:
            raise unauthorized() from None
        check(principal)
    limiter: RateLimiter = state.rate_limiter
    await limiter.check(principal)
    return principal


def require(*scopes: Scope, cached: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller holds one of ``scopes`` (or admin) and is within its quota.

    ``cached``: the key may come from ``CachedAuthenticator`` (``cached_principal``); the
    endpoint must then re-check it where it writes.
    """
    check = scope_check(*scopes)

    async def dependency(principal: PrincipalDep, limiter: RateLimiterDep) -> Principal:
        check(principal)
        await limiter.check(principal)
        return principal

    # Only the request, on purpose: solving each dependency costs the hot path real time.
    # (Routes using it declare ``BEARER_SECURITY`` in their OpenAPI instead of ``_bearer``.)
    async def cached_dependency(request: Request) -> Principal:
        authorization = request.headers.get("authorization", "")
        return await cached_principal(request.app.state, authorization, check, source_of(request))

    chosen: Callable[..., Awaitable[Principal]] = cached_dependency if cached else dependency
    # Read by shared.web.openapi, which writes them into the OpenAPI document.
    chosen.required_scopes = tuple(s.value for s in scopes)  # type: ignore[attr-defined]
    return chosen
