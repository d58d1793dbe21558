"""Attribution as the API shows it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.segment.attribution.models import MODELS, Attribution


class ModelValues(BaseModel):
    """One number per attribution model."""

    last_touch: float
    first_touch: float
    linear: float
    markov: float
    shapley: float


class ChannelAttribution(BaseModel):
    channel: str = Field(description="event channel, or `ads`/`email` from a UTM medium")
    journeys: int = Field(description="journeys with at least one touch of the channel")
    conversions: ModelValues = Field(
        description="conversions credited to the channel by each model (they sum, over the "
        "channels, to `conversions` of the answer)"
    )
    revenue: ModelValues = Field(description="order value credited by each model")
    share: ModelValues = Field(description="the channel's share of the conversions, 0..1")
    removal_effect: float = Field(
        description="share of the Markov chain's conversion probability lost without it"
    )


class AttributionResponse(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    segment: str | None
    models: list[str] = Field(default=list(MODELS))
    journeys: int = Field(description="journeys with at least one touch")
    conversions: int = Field(description="orders that ended a journey with touches")
    revenue: float
    orders_without_touches: int = Field(
        description="orders with no touch before them in the window: credited to no channel"
    )
    revenue_without_touches: float
    channels: list[ChannelAttribution]


def channels_public(result: Attribution) -> list[ChannelAttribution]:
    out = []
    for i, channel in enumerate(result.channels):
        shares = {model: float(result.shares(model)[i]) for model in MODELS}
        out.append(
            ChannelAttribution(
                channel=channel,
                journeys=result.reach[i],
                conversions=ModelValues(
                    **{m: round(float(result.credit[m][i]), 6) for m in MODELS}
                ),
                revenue=ModelValues(
                    **{m: round(float(result.revenue_credit[m][i]), 2) for m in MODELS}
                ),
                share=ModelValues(**shares),
                removal_effect=float(result.removal_effect[i]),
            )
        )
    return sorted(out, key=lambda c: (-c.share.shapley, c.channel))
