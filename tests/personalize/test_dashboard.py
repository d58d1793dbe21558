"""The personalize dashboard's JSON: counts, intervals, allocation, reports, estimates."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from sqlalchemy import Engine

from services.personalize.dashboard.service import wilson
from tests.conftest import MakeKey
from tests.personalize.dashboard_shop import (
    DAYS,
    OFFERS,
    RATES,
    RECOMMENDER_FIGURES,
    SEGMENT_NAMES,
    Dashboard,
    serve_seeded_dashboard,
)
from tests.support.http import auth


@pytest.fixture(scope="module")
def dashboard(
    env: dict[str, str], engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    yield from serve_seeded_dashboard(env, engine, tmp_path_factory)


def test_wilson_interval_matches_hand_computed_values() -> None:
    rate = wilson(5, 20)
    assert rate.rate == 0.25
    assert rate.ci_low == pytest.approx(0.1119, abs=1e-4)
    assert rate.ci_high == pytest.approx(0.4687, abs=1e-4)
    assert wilson(0, 10).ci_low == 0.0
    assert wilson(0, 10).ci_high == pytest.approx(0.2775, abs=1e-4)
    assert wilson(0, 0).rate is None


def test_offer_stats_count_exposures_and_conversions_per_segment(dashboard: Dashboard) -> None:
    seeded, key = dashboard.seeded, dashboard.key
    answer = httpx.get(f"{dashboard.base}/v1/dashboard/placements/home/offers", headers=auth(key))
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


def test_allocation_shows_the_bandit_shifting_traffic(dashboard: Dashboard) -> None:
    key = dashboard.key
    answer = httpx.get(
        f"{dashboard.base}/v1/dashboard/placements/home/allocation",
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
        f"{dashboard.base}/v1/dashboard/placements/home/allocation", headers=auth(key)
    ).json()
    assert auto["bucket"] == "day"
    assert auto["segment"] is None


def test_experiments_and_evaluation_carry_their_intervals(dashboard: Dashboard) -> None:
    seeded, key = dashboard.seeded, dashboard.key
    experiments = httpx.get(f"{dashboard.base}/v1/dashboard/experiments", headers=auth(key))
    assert experiments.status_code == 200, experiments.text
    (report,) = experiments.json()["experiments"]
    assert report["experiment_id"] == seeded.experiment_id
    (comparison,) = report["comparisons"]
    assert comparison["sequential_ci_low"] <= comparison["ci_low"] <= comparison["difference"]
    assert report["states"][0]["arm"] == "bandit"
    assert report["states"][0]["state"] in ("ahead", "collecting")
    evaluation = httpx.get(
        f"{dashboard.base}/v1/dashboard/placements/home/evaluation", headers=auth(key)
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
    dashboard: Dashboard, make_key: MakeKey
) -> None:
    admin = dashboard.key
    reader = make_key("segments:read", "offers:read")
    for path in ("placements", "placements/home/offers", "experiments", "recommenders"):
        url = f"{dashboard.base}/v1/dashboard/{path}"
        assert httpx.get(url, headers=auth(reader)).status_code == 403
        assert httpx.get(url).status_code == 401
    bad = httpx.get(f"{dashboard.base}/v1/dashboard/placements?days=0", headers=auth(admin))
    assert bad.status_code == 422
    assert "days" in bad.text
    bad = httpx.get(
        f"{dashboard.base}/v1/dashboard/placements/home/allocation?bucket=year", headers=auth(admin)
    )
    assert bad.status_code == 422
    assert "bucket" in bad.text
    # Another tenant's admin sees none of this tenant's placements.
    other = make_key("admin")
    listed = httpx.get(f"{dashboard.base}/v1/dashboard/placements", headers=auth(other)).json()
    assert listed["placements"] == []
    assert httpx.get(f"{dashboard.base}/v1/dashboard/recommenders", headers=auth(other)).json() == {
        "served": None,
        "runs": [],
    }


def test_the_recommender_card_shows_the_latest_runs_against_popularity(
    dashboard: Dashboard,
) -> None:
    runs = dashboard.recommender_runs
    answer = httpx.get(f"{dashboard.base}/v1/dashboard/recommenders", headers=auth(dashboard.key))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["served"] == runs["served"]  # the latest succeeded, not the newest run
    listed = {run["id"]: run for run in body["runs"]}
    assert list(listed) == list(reversed(runs.values()))  # newest first (ids are opaque)
    for name, (precision, ndcg, pop_precision, pop_ndcg) in RECOMMENDER_FIGURES.items():
        run = listed[runs[name]]
        assert run["status"] == "succeeded"
        assert (run["k"], run["customers"]) == (10, 300)
        assert run["model"] == {"precision": precision, "ndcg": ndcg}
        assert run["popularity"] == {"precision": pop_precision, "ndcg": pop_ndcg}
    failed, running = listed[runs["failed"]], listed[runs["running"]]
    assert (failed["status"], failed["error"], failed["model"]) == (
        "failed",
        "no purchases to learn from",
        None,
    )
    assert (running["status"], running["progress"], running["finished_at"]) == (
        "running",
        0.4,
        None,
    )
    two = httpx.get(
        f"{dashboard.base}/v1/dashboard/recommenders",
        params={"limit": 2},
        headers=auth(dashboard.key),
    ).json()
    assert [run["id"] for run in two["runs"]] == [runs["running"], runs["failed"]]
    bad = httpx.get(
        f"{dashboard.base}/v1/dashboard/recommenders",
        params={"limit": 0},
        headers=auth(dashboard.key),
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"].endswith("limit")
