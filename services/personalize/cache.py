"""personalize's Redis cache, defined once: what the hot path reads and the worker writes.

Keys (``{t}`` the tenant, ``{h}`` the keyed hash of the caller's customer id — the cache
never holds the id a customer was sent with):

- ``personalize:{t}:customer:{h}`` — a hash: ``segment`` (key under the active run, absent
  for a customer without one), ``consent`` (``1``/``0``: marketing consent) and ``ctx``
  (the numeric context of ``services.personalize.context``, only with consent);
- ``personalize:{t}:placement:{name}`` — the placement's ``PlacementSnapshot`` as JSON;
- ``personalize:{t}:decision:{id}`` — a decision's shown offers, kept for a while so
  feedback can name a decision that is still on its way to Postgres;
- ``personalize:{t}:shown:{h}:{day}`` — a hash: how often each capped offer was shown to
  the customer on that UTC day (``max_impressions_per_customer_per_day``), expiring after
  the next day;
- ``personalize:decisions`` — the decision log stream, drained to Postgres by the worker;
- ``personalize:{t}:recs:{h}`` — the customer's precomputed product recommendations;
- ``personalize:{t}:recs-popular:{segment}`` — a segment's popular products (``*``:
  everyone's), for customers the recommender does not know.

Erasing a customer deletes their customer key, their recommendations and their daily
counters (decisions go with the Postgres rows).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.pii import keyed_hash

DECISION_STREAM = "personalize:decisions"
DECISION_GROUP = "personalize-drain"
# Entries the drain could not store (a record Postgres refuses), kept for an operator
# instead of stopping the log behind them: ``XRANGE personalize:decisions:rejected - +``.
REJECTED_DECISIONS = "personalize:decisions:rejected"
REJECTED_MAX = 100_000
Strategy = Literal["bandit", "static", "random"]
Algorithm = Literal["thompson", "linear_thompson"]


def subject_hash(secret: str, customer_id: str) -> str:
    """The same keyed hash that erasure and suppression use for a customer id."""
    return keyed_hash(secret, customer_id, purpose="customer_id")


def customer_key(tenant_id: int, subject: str) -> str:
    return f"personalize:{tenant_id}:customer:{subject}"


def placement_key(tenant_id: int, placement: str) -> str:
    return f"personalize:{tenant_id}:placement:{placement}"


def recs_key(tenant_id: int, subject: str) -> str:
    return f"personalize:{tenant_id}:recs:{subject}"


def popular_key(tenant_id: int, segment: str | None) -> str:
    return f"personalize:{tenant_id}:recs-popular:{segment or '*'}"


def decision_key(tenant_id: int, decision_id: str) -> str:
    return f"personalize:{tenant_id}:decision:{decision_id}"


SHOWN_TTL_S = 2 * 86_400  # a day's counters outlive the day (clocks differ a little)


def shown_key(tenant_id: int, subject: str, day: date) -> str:
    """The customer's per-offer impression counters of one UTC day."""
    return f"personalize:{tenant_id}:shown:{subject}:{day.isoformat()}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CachedOffer(_Frozen):
    offer_id: str
    name: str
    kind: str
    discount_code: str | None = None
    segments: tuple[str, ...] | None = None  # None: everyone
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_per_day: int | None = None  # impressions per customer per UTC day; None: no cap

    def eligible(self, segment: str | None, now: datetime) -> bool:
        if self.starts_at is not None and now < self.starts_at:
            return False
        if self.ends_at is not None and now >= self.ends_at:
            return False
        return self.segments is None or (segment is not None and segment in self.segments)


class Arm(_Frozen):
    name: str = Field(max_length=64)
    strategy: Literal["bandit", "static", "random", "holdout"]
    share: float = Field(strict=True, gt=0, le=1)


class CachedExperiment(_Frozen):
    experiment_id: int
    arms: tuple[Arm, ...]


class PlacementSnapshot(_Frozen):
    """Everything the hot path needs to answer for one placement, in one GET."""

    tenant_id: int
    placement: str
    strategy: Strategy = "bandit"
    algorithm: Algorithm = "thompson"
    holdout_share: float = 0.05
    exploration: float = 0.02  # the bandit's uniform share (snapshots before it: 2%)
    default_offer_id: str | None = None
    offers: tuple[CachedOffer, ...] = ()
    # The active policy run: its id, version and state (``SegmentThompson.to_dict()``);
    # customers without a segment learn and are served under the segment ``"*"``.
    policy_run_id: int | None = None
    policy_version: int = 0
    policy: dict[str, Any] | None = None
    experiment: CachedExperiment | None = None

    @property
    def capped(self) -> bool:
        """Whether an offer here limits its impressions per customer and day."""
        return any(o.max_per_day is not None for o in self.offers)

    def offer(self, offer_id: str | None) -> CachedOffer | None:
        return next((o for o in self.offers if o.offer_id == offer_id), None)
