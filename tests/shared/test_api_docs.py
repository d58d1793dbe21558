"""/docs and /redoc of every API work on a host without internet: nothing from a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.shared.conftest import PlatformApi

pytestmark = pytest.mark.e2e

APIS = ("ingest", "segment", "nlp", "personalize")
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
RENDER_TIMEOUT_MS = 30_000


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
@pytest.mark.parametrize("name", APIS)
def test_the_docs_pages_load_every_script_and_style_from_the_api_itself(
    platform_apis: dict[str, PlatformApi], name: str, page: str
) -> None:
    base = platform_apis[name].base
    html = httpx.get(f"{base}{page}", timeout=30).text
    assets = ASSET.findall(html)
    assert any(a.endswith(".js") for a in assets), html
    for asset in assets:
        assert not urlsplit(asset).netloc, f"{name}{page} loads {asset} from another host"
        answer = httpx.get(f"{base}{asset}", timeout=30)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 1000, asset


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def _offline_page(browser: Browser, blocked: list[str]) -> Page:
    """A tab that can reach 127.0.0.1 only; every other request is refused and noted
    (as "resource type: URL")."""
    page = browser.new_page()

    def route(r: Route) -> None:
        if urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            blocked.append(f"{r.request.resource_type}: {r.request.url}")
            r.abort()

    page.route("**/*", route)
    return page


@pytest.mark.parametrize("name", APIS)
def test_swagger_ui_lists_the_operations_with_the_network_off(
    platform_apis: dict[str, PlatformApi], offline_browser: Browser, name: str
) -> None:
    api = platform_apis[name]
    blocked: list[str] = []
    page = _offline_page(offline_browser, blocked)
    try:
        page.goto(f"{api.base}/docs")
        operation = page.locator(".opblock-summary-path", has_text=api.post_path).first
        operation.wait_for(timeout=RENDER_TIMEOUT_MS)
        assert page.locator(".opblock").count() >= 3
    finally:
        page.close()
    assert blocked == []


@pytest.mark.parametrize("name", APIS)
def test_redoc_shows_the_api_with_the_network_off(
    platform_apis: dict[str, PlatformApi], offline_browser: Browser, name: str
) -> None:
    api = platform_apis[name]
    blocked: list[str] = []
    page = _offline_page(offline_browser, blocked)
    try:
        page.goto(f"{api.base}/redoc")
        page.get_by_text(api.post_path).first.wait_for(timeout=RENDER_TIMEOUT_MS)
        assert page.locator("h1").first.inner_text().startswith("Segmenta")
    finally:
        page.close()
    # ReDoc's sidebar credit always asks for the Redocly logo; the <img> hides itself when
    # that fails. Nothing the page needs to work may come from outside.
    assert [b for b in blocked if not b.startswith("image: ")] == []
