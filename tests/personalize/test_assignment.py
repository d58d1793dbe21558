"""Sticky hash assignment: deterministic, uniform, independent between experiments."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]

from services.personalize.modeling.assignment import experiment_arm, in_holdout

pytestmark = pytest.mark.unit
IDS = [f"cust-{i}" for i in range(100_000)]


def test_an_experiment_splits_100k_customers_as_configured() -> None:
    arms, split = ["bandit", "static", "random"], [0.5, 0.3, 0.2]
    counts = Counter(experiment_arm("exp-1", cid, arms, split) for cid in IDS)
    observed = [counts[arm] for arm in arms]
    _, p = stats.chisquare(observed, [share * len(IDS) for share in split])
    assert p > 0.001, observed


def test_assignment_is_sticky() -> None:
    first = [experiment_arm("exp-1", cid, ["a", "b"], [0.5, 0.5]) for cid in IDS[:1000]]
    again = [experiment_arm("exp-1", cid, ["a", "b"], [0.5, 0.5]) for cid in IDS[:1000]]
    assert first == again
    assert in_holdout("t", "c-1", "home", 0.05) == in_holdout("t", "c-1", "home", 0.05)


def test_two_experiments_split_customers_independently() -> None:
    one = [experiment_arm("exp-1", cid, ["a", "b"], [0.5, 0.5]) for cid in IDS]
    two = [experiment_arm("exp-2", cid, ["a", "b"], [0.5, 0.5]) for cid in IDS]
    table = np.zeros((2, 2))
    for a, b in zip(one, two, strict=True):
        table["ab".index(a), "ab".index(b)] += 1
    _, p, _, _ = stats.chi2_contingency(table)
    assert p > 0.001, table


def test_the_holdout_takes_its_share_per_placement() -> None:
    home = [in_holdout("shop", cid, "home", 0.05) for cid in IDS]
    cart = [in_holdout("shop", cid, "cart", 0.05) for cid in IDS]
    _, p = stats.chisquare([sum(home), len(IDS) - sum(home)], [5000, 95000])
    assert p > 0.001
    both = sum(h and c for h, c in zip(home, cart, strict=True))
    assert both < 400  # independent: about 0.05 * 0.05 * 100k = 250, not 5,000
    assert not any(in_holdout("shop", cid, "home", 0.0) for cid in IDS[:1000])
    assert all(in_holdout("shop", cid, "home", 1.0) for cid in IDS[:1000])


def test_another_tenant_has_another_holdout() -> None:
    one = {cid for cid in IDS[:20_000] if in_holdout("shop-a", cid, "home", 0.1)}
    two = {cid for cid in IDS[:20_000] if in_holdout("shop-b", cid, "home", 0.1)}
    assert len(one & two) < 0.2 * len(one)


def test_growing_an_arm_moves_only_the_customers_it_needs() -> None:
    before = [experiment_arm("e", cid, ["a", "b"], [0.5, 0.5]) for cid in IDS[:10_000]]
    after = [experiment_arm("e", cid, ["a", "b"], [0.6, 0.4]) for cid in IDS[:10_000]]
    moved = sum(x != y for x, y in zip(before, after, strict=True))
    assert all(x == "b" and y == "a" for x, y in zip(before, after, strict=True) if x != y)
    assert 800 < moved < 1200


@pytest.mark.parametrize(
    ("arms", "split"), [(["a", "b"], [0.5]), (["a", "b"], [0.7, 0.7]), (["a"], [-1.0])]
)
def test_a_bad_split_is_refused(arms: list[str], split: list[float]) -> None:
    with pytest.raises(ValueError, match="split"):
        experiment_arm("e", "c", arms, split)
