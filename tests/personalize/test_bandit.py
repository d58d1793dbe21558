"""Thompson sampling per segment, the random and static strategies, and their propensities."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from services.personalize.modeling.bandit import FeedbackCount, SegmentThompson
from services.personalize.modeling.estimator import NotFittedError
from services.personalize.modeling.propensity import PropensityCache, PropensityTable
from services.personalize.modeling.strategies import RandomPolicy, StaticPolicy

pytestmark = pytest.mark.unit
OFFERS = ["free-ship", "ten-off", "new-in", "bundle"]


def trained() -> SegmentThompson:
    """Bargain hunters convert on ten-off (20 %), champions on new-in (15 %)."""
    return (
        SegmentThompson()
        .fit()
        .update(
            [
                FeedbackCount("bargain", "ten-off", 200, 800),
                FeedbackCount("bargain", "new-in", 20, 980),
                FeedbackCount("champion", "new-in", 150, 850),
                FeedbackCount("champion", "ten-off", 10, 990),
            ]
        )
    )


def shares(policy: SegmentThompson, segment: str, eligible: list[str], n: int = 1) -> Counter[str]:
    rng = np.random.default_rng(1)
    return Counter(policy.choose(segment, eligible, n, rng)[0] for _ in range(4000))


def test_each_segment_mostly_gets_the_offer_it_converts_on() -> None:
    policy = trained()
    assert shares(policy, "bargain", ["ten-off", "new-in"])["ten-off"] > 3700
    assert shares(policy, "champion", ["ten-off", "new-in"])["new-in"] > 3700


def test_choose_ranks_only_eligible_offers_without_repeats() -> None:
    policy = trained()
    rng = np.random.default_rng(0)
    for n in (1, 2, 4, 9):
        shown = policy.choose("bargain", OFFERS, n, rng)
        assert len(shown) == min(n, len(OFFERS))
        assert len(set(shown)) == len(shown)
        assert set(shown) <= set(OFFERS)
    assert policy.choose("bargain", [], 3, rng) == []
    assert policy.choose("bargain", OFFERS, 0, rng) == []


def test_an_unseen_segment_and_a_new_offer_are_explored_from_the_prior() -> None:
    policy = trained()
    counts = shares(policy, "brand-new-segment", OFFERS)
    assert all(800 < counts[offer] < 1200 for offer in OFFERS)
    # a new offer (uniform prior, mean 0.5) beats a known 2 % offer most of the time
    assert shares(policy, "bargain", ["new-in", "brand-new-offer"])["brand-new-offer"] > 3000


def test_a_batched_update_is_one_new_version_and_learns() -> None:
    policy = SegmentThompson(prior_alpha=2, prior_beta=8).fit()
    before = policy.version_
    policy.update([FeedbackCount("s", "a", 5, 5), FeedbackCount("s", "a", 5, 5)])
    assert policy.version_ == before + 1
    alpha, beta = policy.posterior("s", ["a", "b"])
    assert alpha.tolist() == [12, 2]
    assert beta.tolist() == [18, 8]
    with pytest.raises(ValueError, match="negative"):
        policy.update([FeedbackCount("s", "a", -1, 0)])


def test_fit_on_a_log_counts_conversions_per_segment_and_offer() -> None:
    policy = SegmentThompson().fit(["s", "s", "s", "t"], ["a", "a", "b", "a"], [1, 0, 1, 1])
    assert policy.counts_ == {"s": {"a": [1, 1], "b": [1, 0]}, "t": {"a": [1, 0]}}
    with pytest.raises(ValueError, match="between 0 and 1"):
        SegmentThompson().fit(["s"], ["a"], [2.0])


def test_remapping_moves_merges_and_retires_posteriors() -> None:
    policy = (
        SegmentThompson()
        .fit()
        .update(
            [
                FeedbackCount("seg-1", "a", 3, 7),
                FeedbackCount("seg-2", "a", 1, 1),
                FeedbackCount("seg-2", "b", 4, 4),
                FeedbackCount("seg-3", "a", 9, 9),
                FeedbackCount("seg-4", "a", 5, 5),
            ]
        )
    )
    version = policy.version_
    policy.remap_segments({"seg-1": "seg-9", "seg-2": "seg-9", "seg-3": None})
    assert policy.counts_ == {
        "seg-9": {"a": [4, 8], "b": [4, 4]},
        "seg-4": {"a": [5, 5]},
    }
    assert policy.version_ == version + 1


def test_the_json_artifact_gives_the_same_decisions() -> None:
    policy = trained()
    loaded = SegmentThompson.from_dict(json.loads(json.dumps(policy.to_dict())))
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert [policy.choose("bargain", OFFERS, 2, a) for _ in range(50)] == [
        loaded.choose("bargain", OFFERS, 2, b) for _ in range(50)
    ]
    assert loaded.version_ == policy.version_
    with pytest.raises(ValueError, match="not a"):
        SegmentThompson.from_dict({"format": "something else"})


def test_an_unfitted_policy_refuses_to_decide() -> None:
    with pytest.raises(NotFittedError):
        SegmentThompson().choose("s", OFFERS, 1, np.random.default_rng(0))


@pytest.mark.parametrize("n", [1, 2])
def test_propensities_match_how_often_choose_shows_each_offer_at_each_rank(n: int) -> None:
    policy = SegmentThompson(epsilon=0.1, draws=10_000).fit()
    policy.update([FeedbackCount("s", "a", 30, 70), FeedbackCount("s", "b", 25, 75)])
    eligible = ["a", "b", "c"]
    table = policy.propensities("s", eligible, n, np.random.default_rng(2))
    assert np.allclose(table.probabilities.sum(axis=0), 1.0)
    rng = np.random.default_rng(3)
    seen = np.zeros((3, n))
    for _ in range(20_000):
        for rank, offer in enumerate(policy.choose("s", eligible, n, rng)):
            seen[eligible.index(offer), rank] += 1
    assert np.abs(seen / 20_000 - table.probabilities).max() < 0.02


def test_a_one_offer_answer_drawn_from_its_table_shows_each_offer_as_often_as_logged() -> None:
    policy = SegmentThompson(epsilon=0.1, draws=10_000).fit()
    policy.update([FeedbackCount("s", "a", 30, 70), FeedbackCount("s", "b", 25, 75)])
    eligible = ["a", "b", "c"]
    table = policy.propensities("s", eligible, 1, np.random.default_rng(2))
    rng = np.random.default_rng(3)
    drawn = Counter(table.draw_first(float(rng.random()))[0] for _ in range(20_000))
    thompson = Counter(policy.choose("s", eligible, 1, rng)[0] for _ in range(20_000))
    for offer in eligible:
        assert drawn[offer] / 20_000 == pytest.approx(table.of(offer), abs=0.01)
        assert drawn[offer] / 20_000 == pytest.approx(thompson[offer] / 20_000, abs=0.015)
    assert PropensityTable((), np.zeros((0, 1))).draw_first(0.5) == []


def test_a_dominated_offer_keeps_a_propensity_of_at_least_epsilon_over_k() -> None:
    policy = SegmentThompson(epsilon=0.05).fit()
    policy.update([FeedbackCount("s", "good", 500, 500), FeedbackCount("s", "bad", 0, 1000)])
    table = policy.propensities("s", ["good", "bad"], 1, np.random.default_rng(0))
    assert table.of("bad") == pytest.approx(0.025)
    assert table.for_ranking(["bad"]) == [pytest.approx(0.025)]
    unmixed = SegmentThompson(epsilon=0.0, draws=2000).fit()
    unmixed.update([FeedbackCount("s", "good", 500, 500), FeedbackCount("s", "bad", 0, 1000)])
    assert unmixed.propensities("s", ["good", "bad"], 1, np.random.default_rng(0)).of("bad") > 0


def test_the_cache_computes_a_table_once_per_key_and_forgets_the_oldest() -> None:
    policy = trained()
    cache = PropensityCache(max_entries=2)
    calls = []

    def compute(segment: str) -> PropensityTable:
        calls.append(segment)
        return policy.propensities(segment, OFFERS, 1, np.random.default_rng(0))

    key = (policy.version_, "bargain", tuple(OFFERS), 1)
    first = cache.get(key, lambda: compute("bargain"))
    assert cache.get(key, lambda: compute("bargain")) is first
    cache.get(("x",), lambda: compute("champion"))
    cache.get(("y",), lambda: compute("champion"))
    assert len(cache) == 2
    cache.get(key, lambda: compute("bargain"))
    assert calls == ["bargain", "champion", "champion", "bargain"]


def test_random_strategy_propensities_are_exact_and_match_its_choices() -> None:
    policy, rng = RandomPolicy(), np.random.default_rng(0)
    table = policy.propensities(OFFERS, 2)
    assert np.all(table.probabilities == 0.25)
    firsts = Counter(policy.choose(OFFERS, 2, rng)[0] for _ in range(8000))
    assert all(abs(firsts[o] / 8000 - 0.25) < 0.03 for o in OFFERS)


def test_static_strategy_shows_its_order_with_propensity_one() -> None:
    policy = StaticPolicy(order=["bundle", "retired", "ten-off"])
    assert policy.choose(OFFERS, 3) == ["bundle", "ten-off", "free-ship"]
    table = policy.propensities(OFFERS, 2)
    assert table.for_ranking(["bundle", "ten-off"]) == [1.0, 1.0]
    assert table.of("free-ship", 0) == 0.0
