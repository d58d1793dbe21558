"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from shared.web.backlog import read_backlog
from shared.web.deps import EngineDep, RedisDep
from shared.web.operations_metrics import refresh_operations_gauges

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: Postgres and Redis answer; the work still owed",
    responses={503: {"description": "A backing service is down"}},
)
async def readyz(engine: EngineDep, redis: RedisDep) -> JSONResponse:
    backlog = await run_in_threadpool(read_backlog, engine)
    postgres = backlog is not None
    try:
        redis_ok = bool(await asyncio.wait_for(redis.ping(), timeout=2))
    except (RedisError, OSError, TimeoutError):
        redis_ok = False
    checks = {
        "postgres": "ok" if postgres else "unavailable",
        "redis": "ok" if redis_ok else "unavailable",
    }
    ready = postgres and redis_ok
    body: dict[str, object] = {"status": "ready" if ready else "unavailable", "checks": checks}
    if backlog is not None:
        body["backlog"] = backlog.as_dict()
    return JSONResponse(
        body,
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(engine: EngineDep, redis: RedisDep) -> Response:
    await refresh_operations_gauges(engine, redis)  # backlog, queues, runs, as of this scrape
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
