"""The dashboard reads well with 2 to 15 segments at 1280 and 1920 px: no tick label
overlaps another or leaves its chart, features read as words, every rule shows its
coverage and precision. Screenshots of each case go to the test artifacts."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page
from sqlalchemy import Engine

from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment import test_dashboard as dash  # skips the module without Chromium
from tests.segment.builders import NOW, create_run, create_segment
from tests.support.http import tenant_of

# The browser and a clean tab, as the dashboard's own tests get them.
browser_page = dash.browser_page
page = dash.page
pytestmark = pytest.mark.e2e

FEATURES = [
    "recency_days", "frequency", "monetary", "avg_order_value", "discount_share",
    "tenure_days", "channel_store_share", "sessions_90d", "searches_90d",
    "abandoned_cart_days_90d", "store_visits_90d", "support_contacts_per_30d",
]  # fmt: skip
NAMES = [
    "Bargain hunters", "Window shoppers", "New customers", "Lapsing high spenders",
    "Loyal regulars", "Unhappy customers", "Champions",
    "Loyal regulars (higher store visits in the last 90 days)",
    "New customers (higher support contacts per month)",
    "Bargain hunters (lower email opens in the last 90 days)",
    "Sign-ups who never bought", "Big-basket buyers", "Occasional buyers",
    "Unhappy customers (higher support contacts per month)", "Engaged browsers",
]  # fmt: skip
# Tick labels of these charts, per chart: none may overlap another or leave the chart.
CHARTS = ("sizes", "profiles", "stability", "map", "history", "clv", "k")
OVERLAPS = """(id) => {
  const root = document.querySelector(`#chart-${id}`);
  if (!root) return [];
  const box = root.getBoundingClientRect();
  const labels = [...root.querySelectorAll(".xtick text, .ytick text, .legendtext")]
    .map((t) => [t.textContent, t.getBoundingClientRect()]).filter(([, r]) => r.width > 0);
  const problems = [];
  for (const [text, r] of labels) {
    const outside = r.left < box.left - 1 || r.right > box.right + 1;
    if (outside || r.top < box.top - 1 || r.bottom > box.bottom + 1)
      problems.push(`${id}: "${text}" leaves the chart`);
  }
  for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
    const [a, ra] = labels[i], [b, rb] = labels[j];
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > 2 && h > 2) problems.push(`${id}: "${a}" overlaps "${b}"`);
  }
  return problems;
}"""


def build(engine: Engine, tenant_id: int, n: int) -> None:
    rng = random.Random(n)
    with session_scope(engine) as session:
        previous = create_run(session, tenant_id=tenant_id, finished_at=NOW)
        points = [
            [rng.gauss(i % 5 * 3, 0.7), rng.gauss(i // 5 * 3, 0.7), f"s{i}"]
            for i in range(n)
            for _ in range(40)
        ]
        run = create_run(
            session,
            tenant_id=tenant_id,
            active=True,
            activated_at=NOW,
            metrics={"silhouette": 0.4, "surrogate_fidelity": 0.93, "previous_run_id": previous.id,
                     "k_curve": [{"k": k, "silhouette": 0.3 + k / 100} for k in range(2, 16)]},
            artifact={"feature_names": FEATURES, "projection": {"method": "pca", "points": points}},
        )  # fmt: skip
        assert run.id is not None
        assert previous.id is not None
        for i in range(n):
            lifts = {f: rng.uniform(-2, 2) for f in FEATURES}
            coverage = 0.3 if i == 1 else 0.95
            rules = {
                "fidelity": coverage,
                "coverage": coverage,
                "precision": 0.9,
                "paths": [
                    {"text": "x", "conditions": [
                        {"feature": "avg_order_value", "above": 50.0, "text": "x"},
                        {"feature": "recency_days", "at_most": 200.0, "text": "x"}]},
                    {"text": "x", "conditions": [
                        {"feature": "discount_share", "above": 0.5, "text": "x"}]},
                ],
            }  # fmt: skip
            profile = {
                "share": 1 / n,
                "features": [
                    {"name": f, "mean": 10 + v, "population_mean": 10.0, "lift": v}
                    for f, v in lifts.items()
                ],
            }
            stats = {"revenue_share": 1 / n, "clv_share": 1 / n, "mean_clv": 300.0,
                     "jaccard_previous": 0.8}  # fmt: skip
            for run_id in (run.id, previous.id):
                create_segment(session, tenant_id=tenant_id, run_id=run_id, key=f"s{i}",
                               name=NAMES[i], size=100 + 10 * (n - i), description="d",
                               profile=profile, rules=rules, stats=stats)  # fmt: skip


@pytest.mark.parametrize("n", [2, 9, 15])
@pytest.mark.parametrize("width", [1280, 1920])
def test_dashboard_reads_well_with_many_segments(
    page: Page,
    segment_api: str,
    engine: Engine,
    make_key: MakeKey,
    artifacts_dir: Path,
    n: int,
    width: int,
) -> None:
    key = make_key("segments:read", tenant=f"layout-{uuid.uuid4().hex[:12]}")
    build(engine, tenant_of(engine, key), n)
    page.set_viewport_size({"width": width, "height": 900})
    dash.sign_in(page, segment_api, key)
    for chart in ("sizes", "profiles", "map"):
        page.locator(f"#chart-{chart} .main-svg").first.wait_for(timeout=dash.RENDER_TIMEOUT_MS)
    page.wait_for_timeout(300)

    problems = [p for chart in CHARTS for p in page.evaluate(OVERLAPS, chart)]
    heat_labels = page.eval_on_selector_all(
        "#chart-profiles .xtick text", "nodes => nodes.map((n) => n.textContent)"
    )
    rules = page.locator("#rules").inner_text()
    page.mouse.move(0, 0)
    page.screenshot(
        path=str(artifacts_dir / f"dashboard-{n}-segments-{width}px.png"), full_page=True
    )

    assert not problems, problems
    assert heat_labels
    assert not [label for label in heat_labels if "_" in label], heat_labels
    # Money reads in the shop's currency (EUR here: the built shop has no orders).
    assert "average order value > €50" in rules
    assert "(average order value > €50 and days since last order ≤ 200) or" in rules
    assert "no rule recorded" not in rules
    assert "Coverage" in rules
    assert "Precision" in rules
    if n > 1:
        assert "partial" in rules
    for name in NAMES[:n]:
        assert page.locator("#chart-sizes").get_by_text(name, exact=True).count() >= 1
