"""The nlp API: ``uvicorn services.nlp.main:app --port 8004``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.nlp.analysis.analyzer import Analyzer
from services.nlp.analysis.aspects import AspectTaxonomy
from services.nlp.backends import build_backend
from services.nlp.router import router
from services.nlp.settings import NlpSettings, get_nlp_settings
from shared.web.app import platform_app, platform_resources
from shared.web.deps import ThreadLane

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
        async with platform_resources(app, settings):
            # Loaded once per process; inference runs one request at a time.
            backend = build_backend(settings)
            app.state.analyzer = Analyzer(backend, AspectTaxonomy.load(settings.nlp_aspects_file))
            app.state.inference = ThreadLane(1)
            yield

    app = platform_app(
        title="Segmenta nlp",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_bytes=MAX_BODY_BYTES,
    )
    app.include_router(router)
    return app


app = create_app()
