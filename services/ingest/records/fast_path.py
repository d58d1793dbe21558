"""``POST /v1/{kind}`` answered in front of FastAPI, without its per-request machinery.

Routing, dependency solving, ``Request`` objects and the middleware and exception layers
cost more CPU than everything else a single record needs, and one API process spends it
on every request. ``RecordFastPath`` takes the record posts before the app sees them and
does what the route does, through the same functions: the key check of
``require(..., cached=True)`` (``cached_principal``), ``create_records``, the error
answers of ``error_response`` and the request metric of ``MetricsMiddleware``. Every
other request, and the routes' OpenAPI description, stays with the app.
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from services.ingest.records.router import create_records, record_scopes
from services.ingest.records.schemas import RECORD_MODELS, RecordKind
from shared.web.body import receive_chunks
from shared.web.deps import ScopeCheck, cached_principal, scope_check
from shared.web.errors import error_response
from shared.web.metrics import observe_request


class RecordFastPath:
    """An ASGI app: record posts go to ``create_records``, anything else to ``app``."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._routes: dict[str, tuple[RecordKind, ScopeCheck]] = {
            f"/v1/{kind.value}": (kind, scope_check(*record_scopes(kind))) for kind in RECORD_MODELS
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        # Behind a root path the app's router is the one that knows what the path means.
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self._routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # as MetricsMiddleware notes a request that raised
        try:
            status = await self._answer(scope, receive, send, *route)
        finally:
            observe_request(scope["path"], "POST", status, time.perf_counter() - started)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, kind: RecordKind, check: ScopeCheck
    ) -> int:
        state = self.app.state
        # The first of repeated fields wins, as with ``Request.headers.get``.
        headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        try:
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            client = scope.get("client")
            source = client[0] if client else None
            principal = await cached_principal(state, authorization, check, source)
            response = await create_records(
                state,
                principal,
                kind,
                content_type=_text(headers.get(b"content-type")),
                content_length=_text(headers.get(b"content-length")),
                body=receive_chunks(receive),
            )
        except Exception as exc:
            answer = error_response(exc)
            if answer is None:
                raise  # a bug: uvicorn answers 500 and logs it, as the app's handler would
            response = answer
        await response(scope, receive, send)
        return response.status_code


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
