"""``GET /dashboard`` (the page), its static files, and ``GET /v1/dashboard/data``.

The page carries no key: it asks for one, keeps it in the tab's sessionStorage and sends it
as a Bearer header to the data endpoint. Plotly's JavaScript comes from the installed
``plotly`` package, served from here: hosts may have no way to the internet.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from importlib.resources import files
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.dashboard.schemas import DashboardData
from services.segment.dashboard.service import dashboard_data
from services.segment.segmentations.router import SegmentSettingsDep
from services.segment.segmentations.schemas import error_responses
from shared.auth import Principal, Scope
from shared.web.assets import PAGE_HEADERS, Asset
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError

router = APIRouter(tags=["dashboard"])
ReaderDep = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]

PLOTLY_VERSION: Final = version("plotly")
PLOTLY_FILE: Final = f"plotly-{PLOTLY_VERSION}.min.js"


def _package_file(name: str) -> bytes:
    return (files("services.segment.dashboard") / name).read_bytes()


@cache
def assets() -> dict[str, Asset]:
    """Read (and compressed) once per process, on first use."""
    plotly_js = (files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    return {
        "dashboard.js": Asset.of(_package_file("dashboard.js"), "text/javascript"),
        "predictions.js": Asset.of(_package_file("predictions.js"), "text/javascript"),
        "anomalies.js": Asset.of(_package_file("anomalies.js"), "text/javascript"),
        "dashboard.css": Asset.of(_package_file("dashboard.css"), "text/css"),
        "attribution.js": Asset.of(_package_file("attribution.js"), "text/javascript"),
        PLOTLY_FILE: Asset.of(plotly_js, "text/javascript", immutable=True),
    }


@cache
def page() -> str:
    return _package_file("dashboard.html").decode().replace("{{PLOTLY_FILE}}", PLOTLY_FILE)


@router.get("/dashboard", include_in_schema=False, response_class=HTMLResponse)
async def read_dashboard() -> HTMLResponse:
    return HTMLResponse(page(), headers=PAGE_HEADERS)


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def read_dashboard_asset(name: str, request: Request) -> Response:
    asset = assets().get(name)
    if asset is None:
        raise ApiError(404, f"no dashboard file {name!r}")
    return asset.response(request)


def _read_data(engine: Engine, tenant_id: int, default_currency: str) -> DashboardData:
    with Session(engine) as session:
        return dashboard_data(session, tenant_id=tenant_id, default_currency=default_currency)


@router.get(
    "/v1/dashboard/data",
    summary="Everything the dashboard draws",
    description="The active segmentation (metrics, segments with value and rules, the 2-D "
    "map, feature lifts, dendrogram, k-curve), the sizes and stability of recent runs, a "
    "CLV histogram per segment and the latest runs' status, in one answer. With no active "
    "segmentation, `run` is null and `message` says how to train one. Needs `segments:read`.",
    response_model=DashboardData,
    responses=error_responses(),
)
async def read_dashboard_data(
    principal: ReaderDep, database: DatabaseDep, settings: SegmentSettingsDep
) -> DashboardData:
    return await database.run(
        _read_data, database.engine, principal.tenant_id, settings.segment_currency
    )
