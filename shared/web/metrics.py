"""Request latency for Prometheus, per route and status, for every API."""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Histogram(
    "segmenta_http_request_seconds",
    "Request latency by route and status",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


_SERIES: dict[tuple[str, str, int], Histogram] = {}  # labelled children, found once per series


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    series = _SERIES.get((route, method, status))
    if series is None:
        series = _SERIES[(route, method, status)] = REQUESTS.labels(route, method, str(status))
    series.observe(seconds)


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it must not buffer or slow streamed bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            observe_request(path, scope["method"], status, time.perf_counter() - started)
