"""Attribution models: worked by hand on tiny journeys, then against simulated worlds in
which every channel's true contribution is known."""

from __future__ import annotations

from itertools import permutations

import pytest

from services.segment.attribution.models import (
    MODELS,
    OTHER,
    Journey,
    attribute,
    kept_channels,
)
from services.segment.attribution.simulation import (
    ALIGNED,
    POSITION_BIAS,
    ranking,
    simulate_funnel,
    simulate_lift,
)

pytestmark = pytest.mark.unit

TINY = [
    Journey(("ads", "email"), True, 10.0),
    Journey(("email",), False),
    Journey(("ads",), False),
    Journey(("email", "web"), True, 5.0),
]


def credits(model: str, journeys: list[Journey] = TINY) -> dict[str, float]:
    result = attribute(journeys)
    return dict(zip(result.channels, (float(v) for v in result.credit[model]), strict=True))


def test_rule_based_models_by_hand() -> None:
    assert credits("last_touch") == {"ads": 0.0, "email": 1.0, "web": 1.0}
    assert credits("first_touch") == {"ads": 1.0, "email": 1.0, "web": 0.0}
    assert credits("linear") == {"ads": 0.5, "email": 1.0, "web": 0.5}
    revenue = attribute(TINY).revenue_credit["last_touch"].tolist()
    assert revenue == [0.0, 10.0, 5.0]


def test_markov_removal_effect_by_hand() -> None:
    # start: ads 1/2, email 1/2; ads: email 1/2, null 1/2; email: conv, null, web 1/3
    # each; web: conv. P(conv) = 1/2 * 1/3 + 1/2 * 2/3 = 1/2.
    # Without ads: 1/3 (effect 1/3); without email: 0 (effect 1); without web: 1/4 (1/2).
    result = attribute(TINY)
    assert result.removal_effect.tolist() == pytest.approx([1 / 3, 1.0, 1 / 2])
    # Two conversions split 2:6:3.
    assert credits("markov") == pytest.approx({"ads": 4 / 11, "email": 12 / 11, "web": 6 / 11})


def test_shapley_by_hand() -> None:
    # Worth: {ads, email} 1, {email, web} 1, {ads} 0, {email} 0, {web} unseen -> 0.
    # In {ads, email}: ads = 1/2 (0 - 0) + 1/2 (1 - 0) = 1/2, email the same.
    assert credits("shapley") == pytest.approx({"ads": 0.5, "email": 1.0, "web": 0.5})
    # Three players with unequal worth: {a} 1/2, {b} 0, {c} 0, {a,b} 1, {a,c} 1/2,
    # {b,c} 0, {a,b,c} 1. Over the six orders a adds .5, .5, 1, 1, .5, 1 (phi 3/4), b adds
    # .5, .5, 0, 0, .5, 0 (phi 1/4), c adds nothing. Within {a,b}: a = 1/2 .5 + 1/2 1 =
    # 3/4, b = 1/4; within {a,c}: a = 1/2, c = 0, so a takes the whole conversion.
    journeys = [
        Journey(("a",), True),
        Journey(("a",), False),
        Journey(("b",), False),
        Journey(("c",), False),
        Journey(("b", "c"), False),
        Journey(("a", "b"), True),
        Journey(("a", "c"), True),
        Journey(("a", "c"), False),
        Journey(("a", "b", "c"), True),
    ]
    result = attribute(journeys)
    assert result.channels == ("a", "b", "c")
    worth = {
        frozenset(): 0.0,
        frozenset("a"): 0.5,
        frozenset("b"): 0.0,
        frozenset("c"): 0.0,
        frozenset("ab"): 1.0,
        frozenset("ac"): 0.5,
        frozenset("bc"): 0.0,
        frozenset("abc"): 1.0,
    }
    phi = {p: _shapley_by_permutations(p, "abc", worth) for p in "abc"}
    assert phi == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.0})
    # Conversions: {a} gives a 1; {a,b}: a 3/4, b 1/4; {a,c}: a 1; {a,b,c}: as phi.
    assert credits("shapley", journeys) == pytest.approx(
        {"a": 1 + 0.75 + 1 + 0.75, "b": 0.25 + 0.25, "c": 0.0}
    )


def _shapley_by_permutations(
    player: str, players: str, worth: dict[frozenset[str], float]
) -> float:
    orders = list(permutations(players))
    total = 0.0
    for order in orders:
        before = frozenset(order[: order.index(player)])
        total += worth[before | {player}] - worth[before]
    return total / len(orders)


def test_every_model_hands_out_each_conversion_once() -> None:
    simulated = simulate_lift(POSITION_BIAS, journeys=3000, seed=3)
    result = attribute(simulated.journeys)
    for model in MODELS:
        assert result.credit[model].sum() == pytest.approx(result.conversions), model
        assert result.revenue_credit[model].sum() == pytest.approx(result.revenue), model


def test_rare_channels_are_pooled_beyond_the_limit() -> None:
    journeys = [Journey((f"c{i}",) * (20 - i), i % 2 == 0) for i in range(14)]
    journeys += [Journey(("c0", "c1"), True)] * 3
    kept = kept_channels(journeys, limit=4)
    assert kept == ("c0", "c1", "c10", OTHER)
    result = attribute([*journeys, *(Journey((f"x{i}",), True) for i in range(12))])
    assert OTHER in result.channels
    assert len(result.channels) == 10


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_markov_and_shapley_rank_channels_where_last_touch_does_not(seed: int) -> None:
    """Where the channels met most also add most (and the shop visit, adding nothing,
    comes last), both rank every channel by its true contribution; last touch ranks the
    channel that adds nothing above the one that adds most."""
    simulated = simulate_lift(ALIGNED, journeys=20_000, seed=seed)
    result = attribute(simulated.journeys)

    def ranked(model: str) -> list[str]:
        return ranking(dict(zip(result.channels, result.credit[model].tolist(), strict=True)))

    truth = ranking(simulated.truth)
    assert ranked("markov") == truth
    assert ranked("shapley") == truth
    assert ranked("last_touch") != truth
    assert ranked("last_touch").index("web") < ranked("last_touch").index("ads")
    assert truth[-1] == "web"


def test_lift_world_shapley_ranks_channels_where_last_touch_does_not() -> None:
    simulated = simulate_lift(POSITION_BIAS, journeys=20_000, seed=11)
    result = attribute(simulated.journeys)
    truth = ranking(simulated.truth)

    def ranked(model: str) -> list[str]:
        return ranking(dict(zip(result.channels, result.credit[model].tolist(), strict=True)))

    assert truth[-1] == "web"  # the last touch of most journeys adds nothing
    assert ranked("shapley") == truth
    assert ranked("last_touch") != truth
    assert ranked("last_touch")[0] == "web"


def test_funnel_world_markov_ranks_channels_where_last_touch_does_not() -> None:
    simulated = simulate_funnel(journeys=20_000, seed=11)
    result = attribute(simulated.journeys)

    def ranked(model: str) -> list[str]:
        return ranking(dict(zip(result.channels, result.credit[model].tolist(), strict=True)))

    truth = ranking(simulated.truth)
    assert ranked("markov") == truth
    assert ranked("last_touch") != truth
    assert ranked("last_touch")[0] == "web"
    assert truth[0] != "web"
