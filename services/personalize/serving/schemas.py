"""The storefront's answer: what to show, and the decision it is logged under."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ShownOffer(BaseModel):
    offer_id: str
    name: str
    kind: str
    discount_code: str | None
    rank: int
    propensity: float = Field(description="The probability with which the policy chose it")


class OfferAnswer(BaseModel):
    decision_id: str = Field(description="Name it in feedback about this answer")
    customer_id: str
    placement: str
    segment: str | None
    strategy: str = Field(
        description="bandit, static, random, holdout, default (no marketing consent) or "
        "fallback (the cache was unreachable: the placement's default offer)"
    )
    offers: list[ShownOffer]
