"""The personalize API: ``uvicorn services.personalize.main:app --port 8003``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis import Redis

from services.personalize.dashboard.router import router as dashboard_router
from services.personalize.evaluation.router import router as evaluation_router
from services.personalize.experiments.router import router as experiments_router
from services.personalize.feedback.router import MAX_BODY_BYTES
from services.personalize.feedback.router import router as feedback_router
from services.personalize.offers.router import router as offers_router
from services.personalize.recommend.router import router as recommend_router
from services.personalize.serving.coalesce import Coalescer
from services.personalize.serving.decide import Decider
from services.personalize.serving.log import SnapshotCache
from services.personalize.serving.replay import DecisionReplay
from services.personalize.serving.router import router as serving_router
from services.personalize.settings import PersonalizeSettings, get_personalize_settings
from shared.web.app import platform_app, platform_resources

DESCRIPTION = """
The storefront's door: `GET /v1/offers/{customer_id}` chooses offers for a visitor (a
Thompson-sampling bandit per segment by default, with a sticky holdout) and logs the
decision; `POST /v1/feedback` reports what the customer did, and the policy learns from
it within seconds. Offers, placements and experiments are configured with an `admin` key.

Authenticate with an API key: `Authorization: Bearer sgm_...`. The storefront's key needs
`offers:read` and `feedback:write`.
"""


def create_app(settings: PersonalizeSettings | None = None) -> FastAPI:
    settings = settings or get_personalize_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.secret = settings.secret_key.get_secret_value()
        app.state.snapshots = SnapshotCache(settings.personalize_snapshot_ttl_s)
        app.state.decider = Decider()
        app.state.sync_redis = Redis.from_url(
            settings.require_redis_url(), socket_connect_timeout=2, socket_timeout=2
        )
        app.state.replay = DecisionReplay(
            window_s=settings.personalize_replay_window_s,
            max_records=settings.personalize_replay_max,
            ttl_s=settings.personalize_decision_ttl_s,
        )
        async with platform_resources(app, settings):
            app.state.coalescer = Coalescer(app.state.redis)
            replaying = asyncio.create_task(app.state.replay.run(app.state.redis))
            yield
            replaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await replaying
            await app.state.coalescer.aclose()
        app.state.sync_redis.close()

    app = platform_app(
        title="Segmenta personalize",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_bytes=MAX_BODY_BYTES,
    )
    app.include_router(serving_router)
    app.include_router(feedback_router)
    app.include_router(offers_router)
    app.include_router(experiments_router)
    app.include_router(evaluation_router)
    app.include_router(dashboard_router)
    app.include_router(recommend_router)
    return app


app = create_app()
