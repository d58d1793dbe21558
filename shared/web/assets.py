"""Static files of the APIs' pages (the dashboards), held in memory plain and gzipped,
with ETags, and the headers such a page is served with."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from typing import Final

from fastapi import Request, Response

# Plotly adds <style> elements at run time; nothing else inline, nothing from elsewhere.
PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # For browsers older than CSP's frame-ancestors.
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
# The API docs pages (Swagger UI, ReDoc) start themselves with an inline script, so their
# scripts are not restricted; they may not be framed, nor send a referrer, all the same.
DOCS_PAGE_HEADERS: Final = {
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Asset:
    """A static file held in memory, plain and gzipped, with an ETag."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str
    cache_control: str

    @classmethod
    def of(cls, body: bytes, media_type: str, *, immutable: bool = False) -> Asset:
        return cls(
            body=body,
            gzipped=gzip.compress(body, compresslevel=6, mtime=0),
            media_type=media_type,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            cache_control="public, max-age=31536000, immutable" if immutable else "no-cache",
        )

    def response(self, request: Request) -> Response:
        headers = {
            "ETag": self.etag,
            "Cache-Control": self.cache_control,
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept-Encoding",
        }
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)
