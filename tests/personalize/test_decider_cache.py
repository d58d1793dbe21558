"""The serving process caches a placement's policy and propensity tables by name: a new
policy run of the placement (deleted and created again) is never served the old one's."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from services.personalize.cache import CachedOffer, PlacementSnapshot
from services.personalize.modeling.bandit import FeedbackCount, SegmentThompson
from services.personalize.serving.decide import Decider, Visitor

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def snapshot(run_id: int, winner: str) -> PlacementSnapshot:
    policy = SegmentThompson().fit()
    policy.update(
        FeedbackCount("s1", o, 400, 600) if o == winner else FeedbackCount("s1", o, 10, 990)
        for o in ("old", "new", "other")
    )
    policy.version_ = 5  # versions count from 0 in every new run: the same number twice
    return PlacementSnapshot.model_validate(
        {
            "tenant_id": 1,
            "placement": "home",
            "holdout_share": 0,
            "offers": [
                CachedOffer(offer_id=o, name=o, kind="discount") for o in ("old", "new", "other")
            ],
            "policy_run_id": run_id,
            "policy_version": 5,
            "policy": policy.to_dict(),
        }
    )


def test_a_new_policy_run_with_an_old_version_number_is_served_its_own_policy() -> None:
    decider, visitor = Decider(), Visitor("subject", "s1", True, None)
    before = Counter(decider.decide(snapshot(1, "old"), visitor, 1, NOW).shown[0].offer.offer_id
                     for _ in range(300))  # fmt: skip
    after = Counter(decider.decide(snapshot(2, "new"), visitor, 1, NOW).shown[0].offer.offer_id
                    for _ in range(300))  # fmt: skip
    assert before.most_common(1)[0][0] == "old"
    assert after["new"] > 250, after
