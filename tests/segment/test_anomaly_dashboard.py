"""The dashboard's anomalies section in a real browser (skipped without Chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.segment.test_anomaly_api import Flagged, flagged
from tests.segment.test_dashboard import (
    RENDER_TIMEOUT_MS,
    browser_page,
    page,
    sign_in,
)

pytestmark = pytest.mark.e2e
__all__ = ["browser_page", "flagged", "page"]  # fixtures, used by name


def test_the_anomalies_section_draws_counts_and_the_latest_flags(
    page: Page, segment_api: str, flagged: Flagged
) -> None:
    sign_in(page, segment_api, flagged.reader)
    card = page.locator("#anomalies-card")
    card.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    page.locator("#chart-anomalies .main-svg").first.wait_for(timeout=RENDER_TIMEOUT_MS)
    latest = page.locator("#anomalies-latest").inner_text()
    assert "c-0001" in latest
    assert "refund_burst" in latest
    assert page.locator("#anomalies-latest tbody tr").count() == 5
