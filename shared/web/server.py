"""The HTTP protocol every Segmenta API is served with: uvicorn's httptools protocol with a
bound on a request's head (request line and headers).

uvicorn bounds a head only with its pure-Python h11 protocol
(``--h11-max-incomplete-event-size``); with httptools a head grows without limit, and the
parser copies what it holds for each chunk that arrives (a 64 MB header cost the API ~65 MB
and seconds of CPU while every other request waited). Here a connection whose head passes
``MAX_HEAD_BYTES`` before it is complete is answered 431 and closed, having cost at most
that plus one read. Launch with ``uvicorn --http shared.web.server:BoundedHttpToolsProtocol``
(``shared.topology`` does, for every API process).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

# Browsers send a few KiB; nginx's largest default (large_client_header_buffers) is 4 x 8k.
MAX_HEAD_BYTES = 64 * 1024
CLOSE_AFTER_S = 1.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = False  # between a request's first byte and the end of its headers
        self._head_bytes = 0

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = False
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        was_in_head = self._in_head
        super().data_received(data)
        # Only a chunk that began and ended inside a head counts: one that completes a
        # head (or a body, and starts the next head) holds at most one read of it.
        if not (was_in_head and self._in_head) or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_head()

    def _refuse_head(self) -> None:
        message = b"request head (line and headers) is larger than %d bytes" % MAX_HEAD_BYTES
        self.logger.warning("request head over %d bytes refused", MAX_HEAD_BYTES)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(message), message)
        )
        # Read no more, but close a moment later: closing with unread data makes the kernel
        # send a reset, which would reach the client before (and instead of) the 431.
        self.transport.pause_reading()
        self.loop.call_later(CLOSE_AFTER_S, self.transport.close)
