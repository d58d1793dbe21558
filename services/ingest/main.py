"""The ingest API: ``uvicorn services.ingest.main:app --port 8001 --no-access-log``."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.ingest.erasure.router import router as erasure_router
from services.ingest.imports.router import router as import_router
from services.ingest.records.batcher import GroupCommitter
from services.ingest.records.fast_path import RecordFastPath
from services.ingest.records.router import add_record_routes
from services.ingest.records.schemas import RECORD_MODELS
from shared.db import create_db_engine
from shared.settings import Settings, get_settings
from shared.web.app import platform_app, platform_resources
from shared.web.body import LingeringClose
from shared.web.deps import Database
from shared.web.openapi import finish_document

DESCRIPTION = """
Takes in customers, products, orders, events, reviews and support transcripts; validates,
de-duplicates and stores them, then hands work on to the nlp and segment services.

Authenticate with an API key: `Authorization: Bearer sgm_...` (`segmenta keys create`).
"""

GROUP_COMMITS = 2  # transactions of single records in flight at once (more measured slower)
SWITCH_INTERVAL_S = 0.001  # Python's default is 0.005


def _record_schemas() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (model, "validation") for model in RECORD_MODELS.values()
    ]
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in _record_schemas().items():
                components.setdefault(name, definition)
            app.openapi_schema = finish_document(app, schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with platform_resources(app, settings):
            # Its own small pool without pre-ping: a round trip less per group commit.
            engine = create_db_engine(settings, pool_size=GROUP_COMMITS, pre_ping=False)
            committer = GroupCommitter(
                Database(engine, GROUP_COMMITS),
                settings.secret_key.get_secret_value(),
                max_inflight=GROUP_COMMITS,
            )
            app.state.group_committer = committer
            # Threads waiting on Postgres get the GIL back sooner from the busy event loop:
            # a group commit makes several round trips, each waiting up to this interval.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL_S)
            try:
                yield
            finally:
                sys.setswitchinterval(interval)
                await committer.aclose()
                engine.dispose()

    # Bodies are capped per route (records, imports), not for the whole app.
    app = platform_app(title="Segmenta ingest", description=DESCRIPTION, lifespan=lifespan)
    add_record_routes(app.router, settings.max_batch_items)
    app.include_router(import_router)
    app.include_router(erasure_router)
    _install_openapi(app)
    return app


# Record posts are answered in front of the app (see fast_path.py); all else goes to it.
# Their early answers (413, 401) drain the body too, as the app's do.
app = LingeringClose(RecordFastPath(create_app()))
