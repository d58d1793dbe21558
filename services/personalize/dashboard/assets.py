"""The page's static files, held in memory plain and gzipped, with ETags.

Plotly's JavaScript comes from the installed ``plotly`` package and is served from here:
hosts may have no way to the internet. (The segment dashboard serves its files the same
way; services share no code but ``shared/``.)
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from typing import Final

from fastapi import Request, Response

PACKAGE: Final = "services.personalize.dashboard"
# Plotly adds <style> elements at run time; nothing else inline, nothing from elsewhere.
PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class PlotlyMissing(RuntimeError):  # noqa: N818 (a 503 for the visitor)
    """The API was installed without ``plotly``: the page has nothing to draw with."""


@dataclass(frozen=True)
class Asset:
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


def _package_file(name: str) -> bytes:
    return (files(PACKAGE) / name).read_bytes()


@cache
def plotly_file() -> str:
    """The versioned name plotly's bundle is served under (cached forever by browsers)."""
    try:
        return f"plotly-{version('plotly')}.min.js"
    except PackageNotFoundError:
        raise PlotlyMissing("install plotly (the dashboard draws with it)") from None


@cache
def assets() -> dict[str, Asset]:
    """Read (and compressed) once per process, on first use."""
    plotly_js = (files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    return {
        "dashboard.js": Asset.of(_package_file("dashboard.js"), "text/javascript"),
        "dashboard.css": Asset.of(_package_file("dashboard.css"), "text/css"),
        plotly_file(): Asset.of(plotly_js, "text/javascript", immutable=True),
    }


@cache
def page() -> str:
    return _package_file("dashboard.html").decode().replace("{{PLOTLY_FILE}}", plotly_file())
