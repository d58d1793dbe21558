"""Journeys read from events and orders, cut by Postgres: one row per journey.

Each customer's touchpoints (events with a channel, support contacts excepted) and orders
in the window are put in one time line; a journey is what lies between two orders,
ending at the later one (a conversion), or after the customer's last order (no
conversion). An event at the same instant as an order counts before it. A touch's
channel is its event's channel unless its UTM medium names a paid or email campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import text
from sqlmodel import Session

from services.segment.attribution.models import Journey

NOT_TOUCHES: Final = ("support_contact",)
PAID_MEDIUMS: Final = (
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_social",
    "display",
    "cpm",
    "banner",
)
EMAIL_MEDIUMS: Final = ("email", "newsletter")

_MEMBERS_ONLY = """
    AND customer_pk IN (
        SELECT customer_pk FROM segment_membership
        WHERE tenant_id = :tenant AND segment_key = :segment
    )"""
_JOURNEYS = """
WITH line AS (
    SELECT customer_pk, occurred_at AS at, 0 AS is_order, NULL::numeric AS total,
           CASE
               WHEN lower(properties ->> 'utm_medium') = ANY(:paid) THEN 'ads'
               WHEN lower(properties ->> 'utm_medium') = ANY(:email) THEN 'email'
               ELSE lower(channel)
           END AS channel
    FROM event
    WHERE tenant_id = :tenant AND occurred_at >= :start AND occurred_at < :end
      AND channel IS NOT NULL AND NOT (type = ANY(:not_touches)) {members}
    UNION ALL
    SELECT customer_pk, placed_at, 1, total, NULL
    FROM orders
    WHERE tenant_id = :tenant AND placed_at >= :start AND placed_at < :end {members}
), numbered AS (
    SELECT *, coalesce(sum(is_order) OVER (
        PARTITION BY customer_pk ORDER BY at, is_order
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS journey
    FROM line
)
SELECT array_agg(channel ORDER BY at) FILTER (WHERE is_order = 0) AS path,
       bool_or(is_order = 1) AS converted,
       coalesce(sum(total), 0) AS value
FROM numbered
GROUP BY customer_pk, journey
"""


@dataclass(frozen=True)
class JourneyData:
    journeys: list[Journey]
    orders_without_touches: int
    revenue_without_touches: float


def load_journeys(
    session: Session, *, tenant_id: int, start: datetime, end: datetime, segment: str | None
) -> JourneyData:
    sql = _JOURNEYS.format(members=_MEMBERS_ONLY if segment is not None else "")
    params = {
        "tenant": tenant_id,
        "start": start,
        "end": end,
        "segment": segment,
        "paid": list(PAID_MEDIUMS),
        "email": list(EMAIL_MEDIUMS),
        "not_touches": list(NOT_TOUCHES),
    }
    journeys: list[Journey] = []
    bare_orders, bare_revenue = 0, 0.0
    for path, converted, value in session.execute(text(sql), params):
        if not path:
            bare_orders += 1
            bare_revenue += float(value)
            continue
        journeys.append(Journey(tuple(c[:32] for c in path), bool(converted), float(value)))
    return JourneyData(journeys, bare_orders, bare_revenue)
