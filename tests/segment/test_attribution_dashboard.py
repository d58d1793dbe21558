"""The dashboard's attribution card in a real browser (Chromium, driven by Playwright)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page
from sqlalchemy import Engine

from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.builders import build_segmented_shop
from tests.segment.test_attribution_api import add_event, add_order, customer_pk
from tests.segment.test_dashboard import (  # noqa: F401 (fixtures)
    RENDER_TIMEOUT_MS,
    browser_page,
    page,
    sign_in,
)
from tests.support.http import tenant_of

pytestmark = pytest.mark.e2e


def test_attribution_card_draws_every_model(
    page: Page,  # noqa: F811
    segment_api: str,
    engine: Engine,
    make_key: MakeKey,
) -> None:
    key = make_key("segments:read", tenant=f"attr-dash-{uuid.uuid4().hex[:12]}")
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        tenant_id = tenant_of(engine, key)
        build_segmented_shop(session, tenant_id=tenant_id, customers=40)
        for i in range(6):
            pk = customer_pk(session, tenant_id, f"journey-{i}")
            add_event(session, tenant_id, pk, now - timedelta(days=10), "email")
            add_event(session, tenant_id, pk, now - timedelta(days=9), "web")
            if i % 2 == 0:
                add_order(session, tenant_id, pk, now - timedelta(days=8), 40)
    sign_in(page, segment_api, key)
    page.locator("#chart-attribution .main-svg").first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.locator("#chart-attribution .barlayer .trace").count() == 5
    # The legend is SVG: text_content (inner_text reads HTML elements only).
    legend = page.locator("#chart-attribution .legend").text_content() or ""
    for label in ("Last touch", "Markov", "Shapley"):
        assert label in legend
    assert "Share of 3 orders" in page.locator("#attribution-sub").inner_text()


def test_attribution_card_says_when_there_is_nothing(
    page: Page,  # noqa: F811
    segment_api: str,
    engine: Engine,
    make_key: MakeKey,
) -> None:
    key = make_key("segments:read", tenant=f"attr-dash-{uuid.uuid4().hex[:12]}")
    with session_scope(engine) as session:
        build_segmented_shop(session, tenant_id=tenant_of(engine, key), customers=40)
    sign_in(page, segment_api, key)
    empty = page.locator("#chart-attribution .chart-empty")
    empty.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "No orders with touchpoints" in empty.inner_text()
