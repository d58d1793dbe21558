"""The dashboard in a real browser: the system's Chromium, driven by Playwright."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.builders import SEGMENTS, build_segmented_shop, create_run
from tests.support.http import tenant_of

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RENDER_TIMEOUT_MS = 30_000

if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)", allow_module_level=True
    )

from playwright.sync_api import ConsoleMessage, Page, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser.new_page(viewport={"width": 1440, "height": 900})
        finally:
            browser.close()


@pytest.fixture
def page(browser_page: Page) -> Iterator[Page]:
    """A clean tab state, and every console error or page error collected for the test."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A refused key is an answer the page handles, not a fault of the page.
        refused = "status of 401" in message.text or "status of 403" in message.text
        if message.type == "error" and not refused:
            problems.append(f"console: {message.text}")

    browser_page.on("console", on_console)
    browser_page.on("pageerror", lambda error: problems.append(f"page: {error}"))
    browser_page.context.clear_cookies()
    yield browser_page
    browser_page.remove_listener("console", on_console)
    browser_page.evaluate("sessionStorage.clear()")
    assert not problems, problems


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/dashboard")
    page.evaluate("sessionStorage.clear()")
    page.reload()
    page.locator("#key-input").fill(key)
    page.locator("#key-form button[type=submit]").click()


def test_dashboard_draws_the_active_segmentation(
    page: Page, segment_api: str, engine: Engine, make_key: MakeKey, artifacts_dir: Path
) -> None:
    key = make_key("segments:read", tenant=f"dash-{uuid.uuid4().hex[:12]}")
    with session_scope(engine) as session:
        tenant_id = tenant_of(engine, key)
        build_segmented_shop(session, tenant_id=tenant_id, customers=400, algorithm="agglomerative")
        training = create_run(
            session, tenant_id=tenant_id, status="running", progress=0.4, finished_at=None
        )
    sign_in(page, segment_api, key)
    for chart in ("sizes", "map", "clv", "profiles", "k", "history", "stability", "dendrogram"):
        page.locator(f"#chart-{chart} .main-svg").first.wait_for(timeout=RENDER_TIMEOUT_MS)
    rules = page.locator("#rules")
    for spec in SEGMENTS:
        assert spec.name in rules.inner_text()
        assert spec.rule in rules.inner_text()
    assert page.locator("#chart-map .scatterlayer .trace").count() == len(SEGMENTS)
    assert "agglomerative" in page.locator("#run-info").inner_text()
    assert page.locator("#key-panel").is_hidden()
    assert f"Run #{training.id} is running (40%)" in page.locator("#status").inner_text()
    # The built runs store no model to compare with: the page says so, without a failed call.
    flow = page.locator("#chart-flow .chart-empty")
    flow.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "No comparison with run #" in flow.inner_text()
    page.mouse.move(0, 0)  # no hover toolbar in the picture
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)

    # The key stays for the tab: a reload draws again without asking.
    page.reload()
    page.locator("#chart-sizes .main-svg").first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.locator("#key-panel").is_hidden()


def test_dashboard_says_how_to_start(
    page: Page, segment_api: str, make_key: MakeKey, artifacts_dir: Path
) -> None:
    sign_in(page, segment_api, make_key("segments:read"))
    empty = page.locator("#empty")
    empty.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "No active segmentation yet" in empty.inner_text()
    assert "POST /v1/segmentations" in empty.inner_text()
    assert page.locator("#content").is_hidden()
    page.screenshot(path=str(artifacts_dir / "dashboard-empty.png"), full_page=True)


def test_dashboard_refuses_a_wrong_key(page: Page, segment_api: str, make_key: MakeKey) -> None:
    sign_in(page, segment_api, "sgm_nothing_here")
    error = page.locator("#key-error")
    error.filter(has_text="not accepted").wait_for(timeout=RENDER_TIMEOUT_MS)
    sign_in(page, segment_api, make_key("offers:read"))
    error.filter(has_text="segments:read").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.locator("#content").is_hidden()
