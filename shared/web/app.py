"""What every Segmenta API sets up: its resources for the process, and the common routes."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from shared.auth import PrincipalCache
from shared.db import create_db_engine
from shared.logging import configure_logging
from shared.settings import Settings
from shared.web import health
from shared.web.body import BodyLimit, LingeringClose
from shared.web.deps import CachedAuthenticator, Database, RateLimiter
from shared.web.docs import install_docs
from shared.web.errors import install_error_handlers
from shared.web.keyfirst import install_key_first
from shared.web.keygate import KeyGate
from shared.web.metrics import MetricsMiddleware
from shared.web.openapi import install_project_error_bodies

# The collector's thresholds while an API serves. With CPython's default (a young
# collection every 700 allocations), a busy API runs one every few requests and each
# promotes the objects of the requests then in flight; they pile up in the old generation
# until a full collection walks them all: a 10-25 ms pause of every request in flight,
# three times a second at 4,000 requests/s (the storefront's p99 doubled). A young
# collection every 50,000 allocations promotes almost nothing (those objects die by
# reference count first), and garbage in cycles still goes within a fraction of a second.
GC_THRESHOLDS = (50_000, 20, 10)


@asynccontextmanager
async def platform_resources(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """The engine, the database lane, the Redis client and the key checks in ``app.state``."""
    configure_logging(settings.log_level)
    app.state.settings = settings
    app.state.engine = create_db_engine(settings)
    app.state.database = Database(app.state.engine, settings.db_pool_size)
    app.state.redis = Redis.from_url(
        settings.require_redis_url(), socket_connect_timeout=2, socket_timeout=2
    )
    app.state.key_gate = KeyGate()
    app.state.authenticator = CachedAuthenticator(
        app.state.database, PrincipalCache(), app.state.key_gate
    )
    app.state.rate_limiter = RateLimiter(app.state.redis, settings.rate_limit_per_minute)
    # What start-up made lives as long as the process: out of the collector's sight, a full
    # collection need not walk it (~100 ms pauses of every request under load otherwise).
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()  # an app made and closed again in one process is collectable after
        await app.state.redis.aclose()
        app.state.engine.dispose()


def platform_app(
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    max_body_bytes: int | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """A Segmenta API: error answers in one JSON shape (413 included), request metrics,
    bodies drained before an early answer, /healthz, /readyz, /metrics, and /docs and
    /redoc that work offline. ``max_body_bytes`` caps every body (None: the routes cap)."""
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_key_first(app)
    # add_middleware wraps what is there: the last one added sees the request first.
    if max_body_bytes is not None:
        app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(LingeringClose)
    app.include_router(health.router)
    install_docs(app)
    install_project_error_bodies(app)
    return app
