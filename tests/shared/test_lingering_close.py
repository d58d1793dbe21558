"""The drain before an early answer is bounded: an endless sender cannot hold a process."""

from __future__ import annotations

import asyncio

import pytest
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from shared.web import body
from shared.web.body import LingeringClose

pytestmark = pytest.mark.unit

PIECE = 1024 * 1024


async def _early_413(scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": "too large", "errors": []}, status_code=413)(scope, receive, send)


def _serve(pieces: int, *, endless: bool = False) -> tuple[int, dict[bytes, bytes]]:
    """How many body pieces the middleware read, and the answer's headers."""
    read = 0
    sent: list[Message] = []
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"transfer-encoding", b"chunked")],
    }

    async def receive() -> Message:
        nonlocal read
        read += 1
        more = endless or read < pieces
        return {"type": "http.request", "body": b"x" * PIECE, "more_body": more}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(LingeringClose(_early_413)(scope, receive, send))
    return read, dict(sent[0]["headers"])


def test_a_body_within_the_bound_is_read_to_its_end_and_the_connection_kept() -> None:
    read, headers = _serve(pieces=10)
    assert read == 10
    assert b"connection" not in headers


def test_an_endless_body_is_read_up_to_the_bound_then_the_connection_closed() -> None:
    read, headers = _serve(pieces=0, endless=True)
    assert read <= body.LINGER_MAX_BYTES // PIECE + 2
    assert headers[b"connection"] == b"close"
