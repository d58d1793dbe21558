"""The page's static files (see `shared.web.assets`).

Plotly's JavaScript comes from the installed ``plotly`` package and is served from here:
hosts may have no way to the internet.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from typing import Final

from shared.web.assets import Asset

PACKAGE: Final = "services.personalize.dashboard"


class PlotlyMissing(RuntimeError):  # noqa: N818 (a 503 for the visitor)
    """The API was installed without ``plotly``: the page has nothing to draw with."""


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
