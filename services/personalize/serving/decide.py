"""What to show one visitor at one placement: pure, given the cached snapshot and visitor.

Order of precedence: the sticky holdout, then the visitor's experiment arm, then consent
(no marketing consent: the non-personalised default, logged without a segment), then the
placement's strategy, which chooses among the offers eligible now (their segments and
dates) that the visitor has not yet seen today as often as their daily cap allows. The
holdout and default answers are not capped: they are the control, the same for everyone.
Every answer names its strategy and carries the propensity with which each shown offer
was chosen, for the decision log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from services.personalize.cache import CachedOffer, PlacementSnapshot
from services.personalize.context import ZERO_CONTEXT, contextual_policy
from services.personalize.modeling.assignment import experiment_arm, in_holdout
from services.personalize.modeling.bandit import SegmentThompson
from services.personalize.modeling.contextual import LinearThompson
from services.personalize.modeling.propensity import PropensityCache
from services.personalize.modeling.strategies import RandomPolicy, StaticPolicy

NO_SEGMENT = "*"  # what the bandit learns and serves for customers without a segment
Served = Literal["bandit", "static", "random", "holdout", "default", "fallback"]


@dataclass(frozen=True)
class Visitor:
    subject: str  # keyed hash of the customer id: assignment never sees the id itself
    segment: str | None
    consent: bool  # marketing consent; unknown visitors have not refused it
    customer_pk: int | None
    # Offers shown to the visitor today as often as their daily cap allows: not eligible.
    capped: frozenset[str] = frozenset()
    context: tuple[float, ...] = ZERO_CONTEXT  # what the contextual bandit reads


@dataclass(frozen=True)
class Shown:
    offer: CachedOffer
    rank: int
    propensity: float


@dataclass(frozen=True)
class Choice:
    strategy: Served
    segment: str | None
    shown: tuple[Shown, ...]
    personalised: bool
    experiment_id: int | None = None
    arm: str | None = None
    eligible: tuple[str, ...] = ()  # what was chosen among (off-policy evaluation needs it)
    algorithm: str | None = None  # the bandit's, on bandit answers
    context: tuple[float, ...] | None = None  # logged (and learnt from) when personalised


PolicyKey = tuple[int, str, int | None, int, float]


def _policy_key(snapshot: PlacementSnapshot) -> PolicyKey:
    """What names a policy as it serves: its version counts from 0 again in a new run of
    the placement (a placement deleted and created again), so the run is part of the name,
    and the placement's exploration changes its propensities without a new version."""
    return (
        snapshot.tenant_id,
        snapshot.placement,
        snapshot.policy_run_id,
        snapshot.policy_version,
        snapshot.exploration,
    )


class Decider:
    """Per process: turns snapshots into policies once per version, caches propensities."""

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self.rng = rng or np.random.default_rng()
        self.propensities = PropensityCache()
        self._policies: dict[PolicyKey, SegmentThompson] = {}
        self._contextual: dict[PolicyKey, LinearThompson] = {}

    def policy(self, snapshot: PlacementSnapshot) -> SegmentThompson:
        key = _policy_key(snapshot)
        policy = self._policies.get(key)
        if policy is None:
            if snapshot.policy is not None:
                policy = SegmentThompson.from_dict(snapshot.policy)
            else:
                policy = SegmentThompson().fit()
            policy.set_params(epsilon=snapshot.exploration)
            if len(self._policies) > 1024:
                self._policies.clear()
            self._policies[key] = policy
        return policy

    def contextual(self, snapshot: PlacementSnapshot) -> LinearThompson:
        """The placement's linear Thompson policy (learnt next to the segment bandit)."""
        key = _policy_key(snapshot)
        policy = self._contextual.get(key)
        if policy is None:
            policy = contextual_policy(snapshot.policy).set_params(epsilon=snapshot.exploration)
            if len(self._contextual) > 1024:
                self._contextual.clear()
            self._contextual[key] = policy
        return policy

    def decide(
        self, snapshot: PlacementSnapshot, visitor: Visitor, n: int, now: datetime
    ) -> Choice:
        tenant = str(snapshot.tenant_id)
        if in_holdout(tenant, visitor.subject, snapshot.placement, snapshot.holdout_share):
            return self._default(snapshot, "holdout", visitor)
        strategy: Served = snapshot.strategy
        experiment_id = arm = None
        if snapshot.experiment is not None:
            arms = snapshot.experiment.arms
            experiment_id = snapshot.experiment.experiment_id
            arm = experiment_arm(
                str(experiment_id), visitor.subject, [a.name for a in arms], [a.share for a in arms]
            )
            strategy = next(a.strategy for a in arms if a.name == arm)
        if strategy == "holdout":
            return self._default(snapshot, "holdout", visitor, experiment_id, arm)
        if not visitor.consent:
            return self._default(snapshot, "default", None, experiment_id, arm)
        segment = visitor.segment or NO_SEGMENT
        eligible = [
            o
            for o in snapshot.offers
            if o.eligible(visitor.segment, now) and o.offer_id not in visitor.capped
        ]
        ids = [o.offer_id for o in eligible]
        if strategy == "random":
            ranked = RandomPolicy().choose(ids, n, self.rng)
            table = RandomPolicy().propensities(ids, n)
        elif strategy == "static":
            static = StaticPolicy(order=[snapshot.default_offer_id or ""])
            ranked = static.choose(ids, n)
            table = static.propensities(ids, n)
        elif snapshot.algorithm == "linear_thompson":
            contextual = self.contextual(snapshot)
            x = visitor.context
            ranked = contextual.choose(x, ids, n, self.rng)
            # The context is continuous: its table is drawn for each answer, not cached.
            table = contextual.propensities(x, ids, n, self.rng)
        else:
            policy = self.policy(snapshot)
            key = (*_policy_key(snapshot), segment, tuple(ids), n)
            table = self.propensities.get(
                key, lambda: policy.propensities(segment, ids, n, self.rng)
            )
            # One offer: drawn from the cached table, the same distribution as a Thompson
            # draw (up to the table's Monte Carlo error) at a fraction of its cost, and
            # logged with exactly the probability it was drawn with.
            if n == 1:
                ranked = table.draw_first(float(self.rng.random()))
            else:
                ranked = policy.choose(segment, ids, n, self.rng)
        by_id = {o.offer_id: o for o in eligible}
        shown = tuple(
            Shown(by_id[offer], rank, p)
            for rank, (offer, p) in enumerate(zip(ranked, table.for_ranking(ranked), strict=True))
        )
        algorithm = snapshot.algorithm if strategy == "bandit" else None
        return Choice(
            strategy,
            visitor.segment,
            shown,
            True,
            experiment_id,
            arm,
            tuple(ids),
            algorithm,
            visitor.context,
        )

    @staticmethod
    def _default(
        snapshot: PlacementSnapshot,
        strategy: Served,
        visitor: Visitor | None,
        experiment_id: int | None = None,
        arm: str | None = None,
    ) -> Choice:
        """The placement's default offer (or nothing), shown with certainty."""
        offer = snapshot.offer(snapshot.default_offer_id)
        shown = (Shown(offer, 0, 1.0),) if offer is not None else ()
        segment = visitor.segment if visitor is not None else None
        eligible = (offer.offer_id,) if offer is not None else ()
        return Choice(strategy, segment, shown, False, experiment_id, arm, eligible)
