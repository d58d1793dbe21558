"""Request bodies: read with a hard cap (chunked bodies included), and drained before an
early answer so that the client sees it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web.errors import BodyTooLarge, body_too_large, error_response

# What an early answer (a 413, a 401) reads and discards of the rest of the body at most,
# so that a client that writes the whole body before reading (urllib, http.client, curl
# without Expect) gets the answer: closing a socket with unread data makes the kernel send
# a reset, and the client sees "connection reset" instead of the status. Beyond these
# bounds the connection is closed: a sender of endless data cannot hold it.
LINGER_MAX_BYTES = 32 * 1024 * 1024
LINGER_MAX_S = 10.0


async def read_capped(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """The body from ``chunks`` (``Request.stream()``, ``receive_chunks``), refused with 413
    as soon as its declared length (``Content-Length``) or what arrived passes ``limit``
    (never buffered beyond)."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    received: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
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


def _has_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


class BodyLimit:
    """ASGI middleware: a body over ``max_body_bytes`` is answered 413 in the project's
    error shape, by its declared length before the app runs, or as soon as the part read
    passes the limit (chunked bodies)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            answer = error_response(BodyTooLarge(self.limit))
            assert answer is not None
            await answer(scope, receive, send)
            return
        size = 0

        async def capped_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, capped_receive, send)


class LingeringClose:
    """ASGI middleware: when the app answers before it has read the whole request body,
    the rest is read and discarded (up to ``LINGER_MAX_BYTES`` in ``LINGER_MAX_S``) before
    the answer goes out; past those bounds the answer says ``Connection: close``.

    The drain happens when the answer starts, as the server reports a finished answer's
    body as a disconnect. An app must therefore not answer while it still reads the body
    (a streaming answer fed by the request): none of ours does.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        body_done = False

        async def tracked_receive() -> Message:
            nonlocal body_done
            message = await receive()
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def lingering_send(message: Message) -> None:
            nonlocal body_done
            if message["type"] == "http.response.start" and not body_done:
                body_done = await _drain(receive)
                if not body_done:
                    headers = [*message.get("headers", []), (b"connection", b"close")]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, tracked_receive, lingering_send)


async def _drain(receive: Receive) -> bool:
    """Whether the rest of the body was read (or the client left) within the bounds."""
    drained = 0
    try:
        async with asyncio.timeout(LINGER_MAX_S):
            while drained <= LINGER_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body"):
                    return True
                drained += len(message.get("body", b""))
    except TimeoutError:
        pass
    return False
