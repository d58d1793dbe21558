"""The serving process caches a placement's policy and propensity tables by name: a new
policy run of the placement (deleted and created again) is never served the old one's,
and a new exploration share is served at once, without waiting for a new version."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from services.personalize.cache import CachedOffer, PlacementSnapshot
from services.personalize.modeling.bandit import FeedbackCount, SegmentThompson
from services.personalize.serving.decide import Decider, Visitor

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def snapshot(run_id: int, winner: str, exploration: float = 0.02) -> PlacementSnapshot:
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
            "exploration": exploration,
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


def test_a_placement_explores_the_share_it_is_configured_with_and_logs_it() -> None:
    decider, visitor = Decider(), Visitor("subject", "s1", True, None)

    def serve(exploration: float) -> tuple[Counter[str], dict[str, float]]:
        shown, logged = Counter[str](), {}
        for _ in range(3_000):
            first = decider.decide(snapshot(1, "old", exploration), visitor, 1, NOW).shown[0]
            shown[first.offer.offer_id] += 1
            logged[first.offer.offer_id] = first.propensity
        return shown, logged

    rarely, _ = serve(0.02)
    often, logged = serve(0.6)  # the same policy version, a new share
    # Each losing offer: exploration / 3 offers, as good as never by Thompson sampling.
    assert rarely["new"] + rarely["other"] < 120, rarely
    for loser in ("new", "other"):
        assert logged[loser] == pytest.approx(0.2, abs=0.005)
        assert 480 < often[loser] < 720, often  # 600 expected, sd 22
