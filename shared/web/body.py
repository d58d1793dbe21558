"""Reading request bodies with a hard cap, chunked bodies included."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect
from starlette.types import Receive

from shared.web.errors import ApiError


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"request body is larger than {limit} bytes",
        errors=[{"field": "body", "message": f"exceeds {limit} bytes"}],
    )


async def read_capped(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """The body from ``chunks`` (``Request.stream()``, ``receive_chunks``), refused with 413
    as soon as its declared length (``Content-Length``) or what arrived passes ``limit``
    (never buffered beyond)."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    received: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        received.append(chunk)
    return b"".join(received)


async def receive_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body of an ASGI request as it arrives, as ``Request.stream`` gives it."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] == "http.request":
            if chunk := message.get("body", b""):
                yield chunk
            if not message.get("more_body", False):
                return
