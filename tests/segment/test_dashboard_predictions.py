"""The dashboard's churn and propensity section in a real browser (skipped, as the rest
of the dashboard's browser tests, where the system has no Chromium)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page
from sqlalchemy import Engine, text

from services.segment.predictions import runs
from services.segment.predictions.pipeline import train_prediction
from services.segment.predictions.runs import PredictionParams
from services.segment.settings import SegmentSettings
from shared.auth import create_api_key
from shared.db import session_scope
from tests.segment.prediction_shop import build_history_shop
from tests.segment.test_dashboard import (  # the browser fixtures (skips without Chromium)
    RENDER_TIMEOUT_MS,
    browser_page,  # noqa: F401
    page,  # noqa: F401
    sign_in,
)

pytestmark = pytest.mark.e2e
SETTINGS = SegmentSettings(prediction_horizon_days=60)


def test_reliability_and_lift_are_drawn(
    page: Page,  # noqa: F811
    segment_api: str,
    engine: Engine,
    artifacts_dir: Path,
) -> None:
    shop = build_history_shop(engine, customers=400, seed=51)
    for model in ("churn", "purchase_propensity"):
        with session_scope(engine) as session:
            params = PredictionParams.resolve(SETTINGS, model=model)
            run_id = runs.create_run(
                session, tenant_id=shop.tenant_id, params=params, max_in_flight=3
            )
        train_prediction(engine, SETTINGS, run_id)
    with session_scope(engine) as session:
        tenant = session.execute(
            text("SELECT name FROM tenant WHERE id = :t"), {"t": shop.tenant_id}
        ).scalar_one()
        key = create_api_key(
            session, client="dash", scopes=["segments:read"], tenant=tenant or uuid.uuid4().hex
        ).key
    sign_in(page, segment_api, key)
    for chart in ("reliability", "lift"):
        page.locator(f"#chart-{chart} .main-svg").first.wait_for(timeout=RENDER_TIMEOUT_MS)
    figures = page.locator("#prediction-figures").inner_text()
    assert "Churn" in figures
    assert "Purchase propensity" in figures
    assert "(active)" in figures
    # Two models' curves beside the diagonal, and two models' lift bars.
    assert page.locator("#chart-reliability .scatterlayer .trace").count() == 3
    assert page.locator("#chart-lift .barlayer .trace").count() == 2
    page.locator("#predictions-card").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "dashboard-predictions.png"), full_page=True)
