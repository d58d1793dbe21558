"""The personalize dashboard: its JSON, and the page in a real browser (the system's Chromium).

The decision log is seeded straight into Postgres: a week of a bandit shifting traffic
towards each segment's best offer, a holdout, an experiment and its conversions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine
from sqlmodel import Session

from services.personalize.dashboard.service import wilson
from services.personalize.modeling.bandit import SegmentThompson
from shared.auth import create_api_key
from shared.db import session_scope
from shared.models.personalize import Decision, Experiment, Feedback, Offer, Placement, PolicyRun
from shared.runs import RunStatus
from tests.conftest import MakeKey
from tests.segment.builders import create_run, create_segment
from tests.support.http import auth, tenant_of
from tests.support.servers import ROOT, start_api

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page, Route

OFFERS = {"ten_off": "10% off", "free_ship": "Free shipping", "new_in": "New arrivals"}
# True conversion rates per segment; None: customers without a segment.
RATES = {
    "vip": {"ten_off": 0.03, "free_ship": 0.06, "new_in": 0.2},
    "bargain": {"ten_off": 0.25, "free_ship": 0.06, "new_in": 0.02},
    None: {"ten_off": 0.05, "free_ship": 0.05, "new_in": 0.05},
}
BEST = {"vip": "new_in", "bargain": "ten_off", None: "free_ship"}
SEGMENT_NAMES = {"vip": "Loyal big spenders", "bargain": "Bargain hunters"}
DAYS, PER_HOUR, CUSTOMERS = 7, 12, 300


@dataclass
class Seeded:
    tenant_id: int
    experiment_id: int
    exposures: dict[str, int]  # offer → decisions showing it
    conversions: dict[str, int]


def _decision(tenant_id: int, at: datetime, customer: int, **values: Any) -> Decision:
    return Decision(
        decision_id=uuid.uuid4().hex,
        tenant_id=tenant_id,
        subject_hash=f"subject-{customer:04d}",
        placement="home",
        created_at=at,
        **values,
    )


def seed_shop(session: Session, tenant_id: int) -> Seeded:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rng = np.random.default_rng(7)
    run = create_run(session, tenant_id=tenant_id, active=True, activated_at=now)
    assert run.id is not None
    for key, name in SEGMENT_NAMES.items():
        create_segment(session, tenant_id=tenant_id, run_id=run.id, key=key, name=name)
    for offer_id, name in OFFERS.items():
        session.add(
            Offer(
                tenant_id=tenant_id,
                offer_id=offer_id,
                name=name,
                kind="discount",
                placements=["home"],
            )
        )
    session.add(Placement(tenant_id=tenant_id, name="home", default_offer_id="ten_off"))
    session.add(
        PolicyRun(
            tenant_id=tenant_id,
            placement="home",
            version=42,
            active=True,
            status=RunStatus.RUNNING,
            algorithm="thompson",
            state=SegmentThompson().fit().to_dict(),
        )
    )
    started = now - timedelta(days=2)
    arms = [
        {"name": "control", "strategy": "static", "share": 0.5},
        {"name": "bandit", "strategy": "bandit", "share": 0.5},
    ]
    experiment = Experiment(
        tenant_id=tenant_id,
        name="bandit vs 10% off",
        placement="home",
        arms=arms,
        status="running",
        started_at=started,
    )
    session.add(experiment)
    session.flush()
    assert experiment.id is not None
    seeded = Seeded(tenant_id, experiment.id, dict.fromkeys(OFFERS, 0), dict.fromkeys(OFFERS, 0))
    segments = [None, "vip", "bargain"]
    decisions, feedback = [], []
    for hour in range(DAYS * 24):
        at = now - timedelta(hours=DAYS * 24 - hour)
        learnt = hour / (DAYS * 24)  # the bandit's confidence grows over the week
        for _ in range(PER_HOUR):
            customer = int(rng.integers(CUSTOMERS))
            segment = segments[customer % 3]
            arm = None if at < started else ("control" if customer % 2 else "bandit")
            extra = {"experiment_id": experiment.id, "arm": arm} if arm else {}
            if rng.random() < 0.05 and not arm:
                decisions.append(
                    _decision(
                        tenant_id,
                        at,
                        customer,
                        strategy="holdout",
                        offers=[{"offer_id": "ten_off", "rank": 0, "propensity": 1.0}],
                        eligible=["ten_off"],
                        personalised=False,
                    )
                )
                seeded.exposures["ten_off"] += 1
                continue
            if arm == "control":
                offer, p, strategy = "ten_off", 1.0, "static"
            else:
                share = 1 / 3 + (0.8 - 1 / 3) * learnt
                others = [o for o in OFFERS if o != BEST[segment]]
                offer = BEST[segment] if rng.random() < share else others[int(rng.integers(2))]
                p, strategy = share if offer == BEST[segment] else (1 - share) / 2, "bandit"
            decision = _decision(
                tenant_id,
                at,
                customer,
                strategy=strategy,
                segment_key=segment,
                offers=[{"offer_id": offer, "rank": 0, "propensity": p}],
                eligible=list(OFFERS),
                policy_version=hour,
                **extra,
            )
            decisions.append(decision)
            seeded.exposures[offer] += 1
            if rng.random() < RATES[segment][offer]:
                seeded.conversions[offer] += 1
                feedback.append(
                    Feedback(
                        tenant_id=tenant_id,
                        event_id=uuid.uuid4().hex,
                        decision_id=decision.decision_id,
                        subject_hash=decision.subject_hash,
                        offer_id=offer,
                        kind="conversion",
                        value=30.0,
                        occurred_at=at,
                        applied_at=at,
                    )
                )
    session.add_all(decisions)
    session.add_all(feedback)
    return seeded


class ArtifactSettings(BaseSettings):
    """Where tests leave files for people to look at (screenshots)."""

    model_config = SettingsConfigDict(extra="ignore")

    segmenta_test_artifacts: Path = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def dashboard_api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, base = start_api(
        env, tmp_path_factory.mktemp("pdash") / "api.log", app="services.personalize.main:app"
    )
    yield base
    process.stop()


@pytest.fixture(scope="module")
def seeded_shop(engine: Engine) -> tuple[Seeded, str]:
    """One seeded tenant for the module (seeding takes a few seconds), and its admin key."""
    tenant = f"pdash-{uuid.uuid4().hex[:12]}"
    with session_scope(engine) as session:
        key = create_api_key(session, client="test", scopes=["admin"], tenant=tenant).key
    with session_scope(engine) as session:
        seeded = seed_shop(session, tenant_of(engine, key))
    return seeded, key


def test_wilson_interval_matches_hand_computed_values() -> None:
    rate = wilson(5, 20)
    assert rate.rate == 0.25
    assert rate.ci_low == pytest.approx(0.1119, abs=1e-4)
    assert rate.ci_high == pytest.approx(0.4687, abs=1e-4)
    assert wilson(0, 10).ci_low == 0.0
    assert wilson(0, 10).ci_high == pytest.approx(0.2775, abs=1e-4)
    assert wilson(0, 0).rate is None


def test_offer_stats_count_exposures_and_conversions_per_segment(
    dashboard_api: str, seeded_shop: tuple[Seeded, str]
) -> None:
    seeded, key = seeded_shop
    answer = httpx.get(f"{dashboard_api}/v1/dashboard/placements/home/offers", headers=auth(key))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    overall = {s["offer_id"]: s for s in body["stats"] if s["segment"] == "*"}
    for offer in OFFERS:
        assert overall[offer]["exposures"] == seeded.exposures[offer]
        assert overall[offer]["conversions"] == seeded.conversions[offer]
        assert overall[offer]["ci_low"] < overall[offer]["rate"] < overall[offer]["ci_high"]
    by_segment = {(s["segment"], s["offer_id"]): s for s in body["stats"]}
    # Each segment's best offer converts visibly better than its worst, interval apart.
    assert by_segment[("vip", "new_in")]["ci_low"] > by_segment[("vip", "ten_off")]["ci_high"]
    assert (
        by_segment[("bargain", "ten_off")]["ci_low"] > by_segment[("bargain", "new_in")]["ci_high"]
    )
    names = {s["key"]: s["name"] for s in body["segments"]}
    assert names == {**SEGMENT_NAMES, "-": "no segment"}
    assert {o["offer_id"]: o["name"] for o in body["offers"]} == OFFERS


def test_allocation_shows_the_bandit_shifting_traffic(
    dashboard_api: str, seeded_shop: tuple[Seeded, str]
) -> None:
    _, key = seeded_shop
    answer = httpx.get(
        f"{dashboard_api}/v1/dashboard/placements/home/allocation",
        params={"segment": "vip", "bucket": "day"},
        headers=auth(key),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["bucket"] == "day"
    assert len(body["times"]) in (DAYS, DAYS + 1)
    shares = {s["offer_id"]: s["shares"] for s in body["series"]}
    for column in zip(*shares.values(), strict=True):
        assert sum(column) == pytest.approx(1.0)
    assert shares["new_in"][-1] > shares["new_in"][0] + 0.2
    auto = httpx.get(
        f"{dashboard_api}/v1/dashboard/placements/home/allocation", headers=auth(key)
    ).json()
    assert auto["bucket"] == "day"
    assert auto["segment"] is None


def test_experiments_and_evaluation_carry_their_intervals(
    dashboard_api: str, seeded_shop: tuple[Seeded, str]
) -> None:
    seeded, key = seeded_shop
    experiments = httpx.get(f"{dashboard_api}/v1/dashboard/experiments", headers=auth(key))
    assert experiments.status_code == 200, experiments.text
    (report,) = experiments.json()["experiments"]
    assert report["experiment_id"] == seeded.experiment_id
    (comparison,) = report["comparisons"]
    assert comparison["sequential_ci_low"] <= comparison["ci_low"] <= comparison["difference"]
    assert report["states"][0]["arm"] == "bandit"
    assert report["states"][0]["state"] in ("ahead", "collecting")
    evaluation = httpx.get(
        f"{dashboard_api}/v1/dashboard/placements/home/evaluation", headers=auth(key)
    )
    assert evaluation.status_code == 200, evaluation.text
    body = evaluation.json()
    assert body["best_offer"] == "ten_off"
    assert [t["target"] for t in body["targets"]] == ["uniform", "static:ten_off"]
    uniform = body["targets"][0]
    # Uniform random over the three offers earns the average of the true rates.
    truth = np.mean([rate for rates in RATES.values() for rate in rates.values()])
    assert uniform["snips"]["ci_low"] - 0.02 < truth < uniform["snips"]["ci_high"] + 0.02
    assert uniform["ess"] > 0.05 * uniform["rows"]


def test_dashboard_data_needs_an_admin_key_and_valid_queries(
    dashboard_api: str, seeded_shop: tuple[Seeded, str], make_key: MakeKey
) -> None:
    _, admin = seeded_shop
    reader = make_key("segments:read", "offers:read")
    for path in ("placements", "placements/home/offers", "experiments"):
        url = f"{dashboard_api}/v1/dashboard/{path}"
        assert httpx.get(url, headers=auth(reader)).status_code == 403
        assert httpx.get(url).status_code == 401
    bad = httpx.get(f"{dashboard_api}/v1/dashboard/placements?days=0", headers=auth(admin))
    assert bad.status_code == 422
    assert "days" in bad.text
    bad = httpx.get(
        f"{dashboard_api}/v1/dashboard/placements/home/allocation?bucket=year", headers=auth(admin)
    )
    assert bad.status_code == 422
    assert "bucket" in bad.text
    # Another tenant's admin sees none of this tenant's placements.
    other = make_key("admin")
    listed = httpx.get(f"{dashboard_api}/v1/dashboard/placements", headers=auth(other)).json()
    assert listed["placements"] == []


# ---------------------------------------------------------------- in the browser

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
    page: Page, dashboard_api: str, seeded_shop: tuple[Seeded, str], artifacts_dir: Path
) -> None:
    _, key = seeded_shop
    sign_in(page, dashboard_api, key)
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
    page: Page, dashboard_api: str, make_key: MakeKey
) -> None:
    sign_in(page, dashboard_api, "sgm_nothing_here")
    error = page.locator("#key-error")
    error.filter(has_text="not accepted").wait_for(timeout=RENDER_TIMEOUT_MS)
    sign_in(page, dashboard_api, make_key("segments:read", "offers:read"))
    error.filter(has_text="admin").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.locator("#content").is_hidden()


@needs_chromium
def test_dashboard_says_how_to_start(page: Page, dashboard_api: str, make_key: MakeKey) -> None:
    sign_in(page, dashboard_api, make_key("admin"))
    empty = page.locator("#empty")
    empty.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "No placement yet" in empty.inner_text()
    assert page.locator("#content").is_hidden()
