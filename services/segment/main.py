"""The segment API and dashboard: ``uvicorn services.segment.main:app --port 8002``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from services.segment.customers.router import router as customers_router
from services.segment.dashboard.router import assets
from services.segment.dashboard.router import router as dashboard_router
from services.segment.segmentations.router import router as segmentations_router
from services.segment.segments.router import router as segments_router
from services.segment.settings import SegmentSettings, get_segment_settings
from shared.db import create_db_engine
from shared.logging import configure_logging
from shared.web import health
from shared.web.deps import Database
from shared.web.errors import install_error_handlers
from shared.web.metrics import MetricsMiddleware

# The only bodies are small JSON requests for a training run.
MAX_BODY_BYTES = 16 * 1024

DESCRIPTION = """
Explainable customer segments: train a segmentation (k-means, mini-batch k-means,
Gaussian mixture, agglomerative, DBSCAN/HDBSCAN; automatic k), see its segments with
profiles, rules and value, page through their members, follow their history, and look up
one customer's features, segment, CLV, churn and sentiment. The dashboard is at
`/dashboard`.

Authenticate with an API key: `Authorization: Bearer sgm_...`. Reading needs
`segments:read`; training and activating need `admin`.
"""


def create_app(settings: SegmentSettings | None = None) -> FastAPI:
    settings = settings or get_segment_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        app.state.settings = settings
        app.state.engine = create_db_engine(settings)
        app.state.database = Database(app.state.engine, settings.db_pool_size)
        app.state.redis = Redis.from_url(
            settings.require_redis_url(), socket_connect_timeout=2, socket_timeout=2
        )
        assets()  # read and compress the dashboard's files before the first visitor
        try:
            yield
        finally:
            await app.state.redis.aclose()
            app.state.engine.dispose()

    app = FastAPI(
        title="Segmenta segment",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware)
    app.include_router(health.router)
    app.include_router(segmentations_router)
    app.include_router(segments_router)
    app.include_router(customers_router)
    app.include_router(dashboard_router)
    return app


app = create_app()
