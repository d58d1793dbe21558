"""The nlp API: ``uvicorn services.nlp.main:app --port 8004``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from services.nlp.analysis.analyzer import Analyzer
from services.nlp.analysis.aspects import AspectTaxonomy
from services.nlp.backends import build_backend
from services.nlp.router import router
from services.nlp.settings import NlpSettings, get_nlp_settings
from shared.db import create_db_engine
from shared.logging import configure_logging
from shared.web import health
from shared.web.deps import Database, ThreadLane
from shared.web.errors import install_error_handlers
from shared.web.metrics import MetricsMiddleware

MAX_BODY_BYTES = 256 * 1024

DESCRIPTION = """
Sentiment of what customers write and say: reviews (label, score, aspects, a check
against the star rating) and support transcripts (every turn, per speaker, the
customer's trajectory, escalation and churn cues, topics, resolved or not).

Authenticate with an API key: `Authorization: Bearer sgm_...`.
"""


def create_app(settings: NlpSettings | None = None) -> FastAPI:
    settings = settings or get_nlp_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        app.state.settings = settings
        app.state.engine = create_db_engine(settings)
        app.state.database = Database(app.state.engine, settings.db_pool_size)
        app.state.redis = Redis.from_url(
            settings.require_redis_url(), socket_connect_timeout=2, socket_timeout=2
        )
        # Loaded once per process; inference runs one request at a time.
        backend = build_backend(settings)
        app.state.analyzer = Analyzer(backend, AspectTaxonomy.load(settings.nlp_aspects_file))
        app.state.inference = ThreadLane(1)
        try:
            yield
        finally:
            await app.state.redis.aclose()
            app.state.engine.dispose()

    app = FastAPI(
        title="Segmenta nlp",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware)
    app.include_router(health.router)
    app.include_router(router)
    return app


app = create_app()
