"""A placement where no offer is eligible for the visitor (segments, dates, daily caps)
answers with no offers, whatever its strategy and algorithm, never an error (a 500 that
schemathesis found: the propensity tables divided by the number of eligible offers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.personalize.cache import CachedOffer, PlacementSnapshot
from services.personalize.serving.decide import Decider, Visitor

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.mark.parametrize("strategy", ["bandit", "random", "static"])
@pytest.mark.parametrize("algorithm", ["thompson", "linear_thompson"])
@pytest.mark.parametrize("n", [1, 3])
def test_no_eligible_offer_is_an_empty_answer(strategy: str, algorithm: str, n: int) -> None:
    snapshot = PlacementSnapshot.model_validate(
        {
            "tenant_id": 1,
            "placement": "home",
            "strategy": strategy,
            "algorithm": algorithm,
            "holdout_share": 0,
            "offers": [
                CachedOffer(offer_id="vip", name="VIP", kind="content", segments=("s1",)),
                CachedOffer(offer_id="old", name="Old", kind="discount", ends_at=NOW),
                CachedOffer(offer_id="capped", name="Capped", kind="discount", max_per_day=1),
            ],
        }
    )
    visitor = Visitor("subject", None, True, None, capped=frozenset({"capped"}))

    choice = Decider().decide(snapshot, visitor, n, NOW)

    assert choice.shown == ()
    assert choice.eligible == ()
    assert choice.strategy == strategy
