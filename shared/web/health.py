"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from shared.web.deps import EngineDep, RedisDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _postgres_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


@router.get(
    "/readyz",
    summary="Readiness: Postgres and Redis answer",
    responses={503: {"description": "A backing service is down"}},
)
async def readyz(engine: EngineDep, redis: RedisDep) -> JSONResponse:
    postgres = await run_in_threadpool(_postgres_ok, engine)
    try:
        redis_ok = bool(await asyncio.wait_for(redis.ping(), timeout=2))
    except (RedisError, OSError, TimeoutError):
        redis_ok = False
    checks = {
        "postgres": "ok" if postgres else "unavailable",
        "redis": "ok" if redis_ok else "unavailable",
    }
    ready = postgres and redis_ok
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
