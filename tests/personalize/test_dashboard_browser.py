"""The personalize dashboard in a real browser: the system's Chromium, driven by Playwright.

Screenshots land in the test artifacts folder; console errors, page errors and any
request off 127.0.0.1 fail the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from tests.conftest import MakeKey
from tests.personalize.dashboard_shop import (
    OFFERS,
    RECOMMENDED_CUSTOMER,
    RECOMMENDED_ITEMS,
    Dashboard,
    serve_seeded_dashboard,
)
from tests.support.servers import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page, Route

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dashboard(
    env: dict[str, str], engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    yield from serve_seeded_dashboard(env, engine, tmp_path_factory)


class ArtifactSettings(BaseSettings):
    """Where tests leave files for people to look at (screenshots)."""

    model_config = SettingsConfigDict(extra="ignore")

    segmenta_test_artifacts: Path = ROOT / "tests" / "artifacts"


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
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
)


@pytest.fixture(scope="module")
def artifacts_dir() -> Path:
    folder = ArtifactSettings().segmenta_test_artifacts
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

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
    """A clean tab; console errors, page errors and requests off 127.0.0.1 fail the test."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A refused key is an answer the page handles, not a fault of the page.
        refused = "status of 401" in message.text or "status of 403" in message.text
        if message.type == "error" and not refused:
            problems.append(f"console: {message.text}")

    def on_request(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname == "127.0.0.1":
            route.continue_()
        else:
            problems.append(f"network: {route.request.url}")
            route.abort()

    browser_page.on("console", on_console)
    browser_page.on("pageerror", lambda error: problems.append(f"page: {error}"))
    browser_page.route("**/*", on_request)
    browser_page.context.clear_cookies()
    yield browser_page
    browser_page.remove_listener("console", on_console)
    browser_page.unroute("**/*")
    browser_page.evaluate("sessionStorage.clear()")
    assert not problems, problems


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/dashboard")
    page.evaluate("sessionStorage.clear()")
    page.reload()
    page.locator("#key-input").fill(key)
    page.locator("#key-form button[type=submit]").click()


@needs_chromium
def test_dashboard_draws_offers_allocation_experiments_and_estimates(
    page: Page, dashboard: Dashboard, artifacts_dir: Path
) -> None:
    key = dashboard.key
    sign_in(page, dashboard.base, key)
    for chart in ("exposures", "conversion", "allocation", "ope", "experiments"):
        page.locator(f"#chart-{chart} .main-svg").first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.locator("#key-panel").is_hidden()
    # One bar trace per segment plus all segments together, each with its intervals.
    assert page.locator("#chart-conversion .barlayer .trace").count() == 4
    assert page.locator("#chart-conversion .errorbar").count() >= 12
    assert page.locator("#chart-allocation .scatterlayer .trace").count() == len(OFFERS)
    ope = page.locator("#ope").inner_text()
    assert "uniform random" in ope
    assert "always 10% off" in ope
    experiments = page.locator("#experiments").inner_text()
    assert "bandit vs 10% off" in experiments
    assert "sample ratio" in experiments
    assert page.locator("#experiments .pill.ahead, #experiments .pill.collecting").count() == 1
    assert "Loyal big spenders" in page.locator("#segment").inner_text()
    segments_link = page.locator("#segments-link").get_attribute("href")
    assert segments_link == "http://127.0.0.1:8002/dashboard"
    page.mouse.move(0, 0)  # no hover toolbar in the picture
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "personalize-dashboard.png"), full_page=True)

    # One segment: its own bars, and the allocation redrawn for it.
    page.locator("#segment").select_option("vip")
    page.locator("#allocation-sub", has_text="Loyal big spenders").wait_for(
        timeout=RENDER_TIMEOUT_MS
    )
    assert page.locator("#chart-conversion .barlayer .trace").count() == 1
    page.screenshot(path=str(artifacts_dir / "personalize-dashboard-vip.png"), full_page=True)

    # The key stays for the tab: a reload draws again without asking.
    page.reload()
    page.locator("#chart-exposures .main-svg").first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.locator("#key-panel").is_hidden()


@needs_chromium
def test_dashboard_refuses_a_key_without_admin(
    page: Page, dashboard: Dashboard, make_key: MakeKey
) -> None:
    sign_in(page, dashboard.base, "sgm_nothing_here")
    error = page.locator("#key-error")
    error.filter(has_text="not accepted").wait_for(timeout=RENDER_TIMEOUT_MS)
    sign_in(page, dashboard.base, make_key("segments:read", "offers:read"))
    error.filter(has_text="admin").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.locator("#content").is_hidden()


@needs_chromium
def test_dashboard_says_how_to_start(page: Page, dashboard: Dashboard, make_key: MakeKey) -> None:
    sign_in(page, dashboard.base, make_key("admin"))
    empty = page.locator("#empty")
    empty.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "No placement yet" in empty.inner_text()
    assert page.locator("#content").is_hidden()


@needs_chromium
def test_recommender_card_shows_runs_and_a_customers_list_as_text(
    page: Page, dashboard: Dashboard, artifacts_dir: Path
) -> None:
    runs = dashboard.recommender_runs
    sign_in(page, dashboard.base, dashboard.key)
    card = page.locator("#recommender")
    card.locator("#recommender-runs tbody tr").first.wait_for(timeout=RENDER_TIMEOUT_MS)
    rows = card.locator("#recommender-runs tbody tr")
    assert rows.count() == 4
    served = rows.filter(has_text=f"#{runs['served']}")
    assert "served" in served.inner_text()
    assert "0.094 (popularity 0.05)" in served.inner_text()  # precision@10 against popularity
    assert "0.231 (popularity 0.12)" in served.inner_text()  # NDCG@10
    assert "no purchases to learn from" in rows.filter(has_text=f"#{runs['failed']}").inner_text()
    assert "running 40.0%" in rows.filter(has_text=f"#{runs['running']}").inner_text()

    page.locator("#recs-customer").fill(RECOMMENDED_CUSTOMER)
    page.locator("#recs-form button[type=submit]").click()
    items = page.locator("#recs-items tbody tr")
    items.first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert items.count() == len(RECOMMENDED_ITEMS)
    first = items.first.inner_text()
    # Markup in an id or a reason is shown as text, never made into elements.
    assert str(RECOMMENDED_ITEMS[0]["product_id"]) in first
    assert "bought together with <b>Tent</b>" in first
    assert page.locator("#injected, #recommender b").count() == 0
    answer = page.locator("#recs-answer").inner_text()
    assert f"from run #{runs['served']}" in answer
    card.screenshot(path=str(artifacts_dir / "personalize-dashboard-recommender.png"))

    # A customer no run knows: the page says so instead of an empty table.
    page.locator("#recs-customer").fill("nobody-known")
    page.locator("#recs-form button[type=submit]").click()
    page.locator("#recs-answer", has_text="nobody-known").wait_for(timeout=RENDER_TIMEOUT_MS)
