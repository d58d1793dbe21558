"""The segment API and dashboard: ``uvicorn services.segment.main:app --port 8002``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.segment.anomalies.router import router as anomalies_router
from services.segment.attribution.router import router as attribution_router
from services.segment.customers.router import router as customers_router
from services.segment.dashboard.router import assets
from services.segment.dashboard.router import router as dashboard_router
from services.segment.predictions.router import router as predictions_router
from services.segment.segmentations.insights import router as insights_router
from services.segment.segmentations.router import router as segmentations_router
from services.segment.segments.export import router as export_router
from services.segment.segments.router import router as segments_router
from services.segment.settings import SegmentSettings, get_segment_settings
from services.segment.webhooks.router import router as webhooks_router
from shared.web.app import platform_app, platform_resources

# The only bodies are small JSON requests for a training run.
MAX_BODY_BYTES = 16 * 1024

DESCRIPTION = """
Explainable customer segments: train a segmentation (k-means, mini-batch k-means,
Gaussian mixture, agglomerative, DBSCAN/HDBSCAN; automatic k), see its segments with
profiles, rules and value, page through their members, follow their history, and look up
one customer's features, segment, CLV, churn and sentiment; train churn and
purchase-propensity models and read every customer's probability with its reasons. The
dashboard is at `/dashboard`.

Authenticate with an API key: `Authorization: Bearer sgm_...`. Reading needs
`segments:read`; training and activating need `admin`.
"""


def create_app(settings: SegmentSettings | None = None) -> FastAPI:
    settings = settings or get_segment_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with platform_resources(app, settings):
            assets()  # read and compress the dashboard's files before the first visitor
            yield

    app = platform_app(
        title="Segmenta segment",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_bytes=MAX_BODY_BYTES,
    )
    app.include_router(segmentations_router)
    app.include_router(insights_router)
    app.include_router(segments_router)
    app.include_router(export_router)
    app.include_router(customers_router)
    app.include_router(predictions_router)
    app.include_router(attribution_router)
    app.include_router(webhooks_router)
    app.include_router(dashboard_router)
    app.include_router(anomalies_router)
    return app


app = create_app()
