"""The bandit against uniform random on a simulated storefront whose tastes are known.

Shoppers of four behaviour types (each loving a different offer) visit two placements
through the real APIs: ``home`` learns with the bandit, ``lucky`` shows a uniformly random
offer. The bandit must convert clearly better than random once it has learnt, and the
off-policy estimate of the uniform policy, computed from the bandit's own decision log,
must come close to the uniform policy's true conversion rate. (The full
20,000-visit version with the oracle and the best static offer is ``bench.personalize``.)
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine

from segmenta.demo.storefront import ORACLE, UNIFORM_TRUTH, Population, Tastes
from segmenta.demo.storefront_shop import Shop, simulate
from tests.conftest import MakeKey
from tests.support.http import tenant_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VISITS = 3_000
CUSTOMERS = 600
# The bandit explores 10% of its answers here instead of the default 2%: at 2% an
# unexplored offer's propensity is 0.33%, so each of its conversions weighs 50 visits in
# the estimate, and over 3,000 visits a few of them move it by more than 40% about once
# in 75 logs (an offline replay of this bandit, 300 logs); at 10%, 0 in 1,000 did.
EXPLORATION = 0.1
UNLIMITED = 1_000_000_000


@pytest.fixture
def sim_shop(make_key: MakeKey, engine: Engine, personalize_api: str, api: str) -> Shop:
    tenant = f"sim-{uuid.uuid4().hex[:12]}"
    admin = make_key("admin", tenant=tenant, rate_limit_per_minute=UNLIMITED)
    return Shop(
        personalize_url=personalize_api,
        ingest_url=api,
        admin_key=admin,
        storefront_key=make_key(
            "offers:read", "feedback:write", tenant=tenant, rate_limit_per_minute=UNLIMITED
        ),
        ingest_key=make_key("ingest:write", tenant=tenant, rate_limit_per_minute=UNLIMITED),
        tenant_id=tenant_of(engine, admin),
        engine=engine,
    )


@pytest.mark.parametrize("seed", [11])
def test_the_bandit_learns_the_segments_tastes_and_its_log_evaluates_uniform(
    sim_shop: Shop, seed: int
) -> None:
    tastes = Tastes.generate(seed)
    population = Population.draw(tastes, CUSTOMERS, seed, prefix=f"sim{seed}")
    run = simulate(
        sim_shop,
        tastes,
        population,
        {"home": "bandit", "lucky": "random"},
        VISITS,
        seed,
        evaluate="home",
        exploration=EXPLORATION,
    )
    tally = run.tally
    assert tally.rejected == 0  # every conversion named a decision and offer it showed
    # Over the second half the bandit shows what converts: the true conversion rates of
    # the offers it chose (the realised draws say the same, with more noise).
    bandit = tally.rate("home", 0.5, expected=True)
    random = tally.rate("lucky", 0.5, expected=True)
    oracle = tally.rate(ORACLE, 0.5, expected=True)
    behind = run.lags.describe()  # a failure shows whether the platform fell behind
    assert bandit >= 1.5 * random, (bandit, random, oracle, behind)
    assert bandit >= 0.7 * oracle, (bandit, random, oracle, behind)
    assert tally.rate("home", 0.5) > tally.rate("lucky", 0.5)
    # The uniform policy's truth (mean of the visitors' rates) as the log estimates it. The
    # 95% intervals' coverage is a property of many logs (test_ope: 200 of them); one log
    # of a learning bandit shows whether decisions, propensities and conversions reach the
    # estimate right: wrong propensities put it off by a factor (ignored ones give the
    # bandit's own rate, ~3x), where chance moves it by 9% in half the logs and by 30% in
    # one in a hundred (see EXPLORATION).
    truth = tally.rate(UNIFORM_TRUTH, expected=True)
    for estimator in ("ips", "snips"):
        estimate = run.ope[estimator]["estimate"]
        assert abs(estimate / truth - 1) <= 0.4, (estimator, truth, run.ope, behind)
    assert run.ope["rows"] == VISITS
    print(
        f"seed {seed}: second half expected bandit {bandit:.4f} random {random:.4f} "
        f"oracle {oracle:.4f}; uniform truth {truth:.4f}; OPE {run.ope}; {run.seconds:.0f} s; "
        f"{behind}"
    )
