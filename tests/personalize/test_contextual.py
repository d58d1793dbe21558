"""Linear Thompson sampling: learns which offer suits which customer features."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from services.personalize.modeling.contextual import LinearThompson

pytestmark = pytest.mark.unit


def logged(rows: int = 3000, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Feature 0 is discount affinity: discount-lovers convert on ten-off, others on new-in."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    actions = [str(a) for a in rng.choice(["ten-off", "new-in"], rows)]
    rate = np.where(
        np.array(actions) == "ten-off", 0.15 + 0.1 * (x[:, 0] > 0), 0.2 - 0.1 * (x[:, 0] > 0)
    )
    return x, actions, rng.binomial(1, rate).astype(float)


def first_choices(policy: LinearThompson, x: list[float], eligible: list[str]) -> Counter[str]:
    rng = np.random.default_rng(1)
    return Counter(policy.choose(x, eligible, 1, rng)[0] for _ in range(2000))


def test_the_offer_follows_the_customers_features() -> None:
    x, actions, rewards = logged()
    policy = LinearThompson(noise_scale=0.4).fit(x, actions, rewards)
    assert first_choices(policy, [2.0, 0, 0], ["ten-off", "new-in"])["ten-off"] > 1700
    assert first_choices(policy, [-2.0, 0, 0], ["ten-off", "new-in"])["new-in"] > 1700


def test_batched_updates_equal_one_fit_on_all_rows() -> None:
    x, actions, rewards = logged()
    whole = LinearThompson().fit(x, actions, rewards)
    parts = LinearThompson().fit(x[:1000], actions[:1000], rewards[:1000])
    parts.update(x[1000:], actions[1000:], rewards[1000:])
    assert np.allclose(whole.mean_, parts.mean_)
    assert parts.version_ == whole.version_ + 1


def test_an_offer_never_shown_is_explored_with_the_prior() -> None:
    x, actions, rewards = logged()
    policy = LinearThompson().fit(x, actions, rewards)
    mean, sd = policy.score_distribution([0.5, 0, 0], ["ten-off", "brand-new"])
    assert mean[1] == 0.0
    assert sd[1] > 10 * sd[0]
    assert first_choices(policy, [0.5, 0, 0], ["ten-off", "brand-new"])["brand-new"] > 200


def test_propensities_match_the_choices() -> None:
    x, actions, rewards = logged(rows=300)
    policy = LinearThompson(epsilon=0.1, draws=10_000).fit(x, actions, rewards)
    eligible, customer = ["ten-off", "new-in", "bundle"], [0.3, -0.2, 1.0]
    table = policy.propensities(customer, eligible, 1, np.random.default_rng(4))
    seen = first_choices(policy, customer, eligible)
    for offer in eligible:
        assert abs(seen[offer] / 2000 - table.of(offer)) < 0.04
    assert min(table.probabilities[:, 0]) >= 0.1 / 3


def test_the_json_artifact_gives_the_same_decisions_and_checks_the_width() -> None:
    x, actions, rewards = logged()
    policy = LinearThompson().fit(x, actions, rewards)
    loaded = LinearThompson.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert loaded.version_ == policy.version_
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    customer = [0.1, 0.2, 0.3]
    assert [policy.choose(customer, ["ten-off", "new-in"], 2, a) for _ in range(30)] == [
        loaded.choose(customer, ["ten-off", "new-in"], 2, b) for _ in range(30)
    ]
    with pytest.raises(ValueError, match="expected 3 features"):
        loaded.choose([1.0], ["ten-off"], 1, a)


def test_shows_then_their_rewards_equal_one_fit_with_the_rewards() -> None:
    # The worker learns a show when the decision is stored, its conversion later.
    x, actions, rewards = logged()
    whole = LinearThompson().fit(x, actions, rewards)
    split = LinearThompson().fit(x, actions, np.zeros(len(actions)))
    won = rewards > 0
    split.reward(x[won], [a for a, w in zip(actions, won, strict=True) if w], rewards[won])
    assert np.allclose(whole.mean_, split.mean_)
    assert np.allclose(whole.covariance_, split.covariance_)
    assert split.reward(np.zeros((0, 3)), [], []) is split
