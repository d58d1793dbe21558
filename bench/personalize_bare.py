"""The raw limit of the storefront's read: a bare FastAPI GET route doing one Redis GET.

Served by the same uvicorn command as the personalize API, so that ``bench.personalize``
can tell the cost of choosing and logging a decision from the cost of the web stack and
one Redis round trip.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis

from shared.settings import RedisSettings
from shared.web.app import GC_THRESHOLDS


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.redis = Redis.from_url(RedisSettings().redis_url or "redis://127.0.0.1:6379/0")
    gc.set_threshold(*GC_THRESHOLDS)  # the collector as the APIs have it: a like-for-like baseline
    yield
    await app.state.redis.aclose()


app = FastAPI(title="bare personalize", lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/v1/offers/{customer_id}")
async def read_offers(customer_id: str, placement: str = "home") -> dict[str, Any]:
    value = await app.state.redis.get(f"bench:bare:{placement}")
    return {"customer_id": customer_id, "placement": placement, "size": len(value or b"")}
