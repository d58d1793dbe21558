"""The dashboard's queries over the decision log, feedback, placements and offers.

A decision converted on an offer when feedback of kind ``conversion`` names both; counts
are of decisions, so a replayed conversion is not counted twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from services.personalize.dashboard.schemas import NO_SEGMENT_KEY, Bucket, Strategy

POLICY_STRATEGIES = ("bandit", "random", "static")  # as in the off-policy evaluation

_CONVERTED = """EXISTS (SELECT 1 FROM feedback f WHERE f.tenant_id = :t
    AND f.decision_id = {decision} AND f.offer_id = {offer} AND f.kind = 'conversion')"""

_PLACEMENTS = text(
    """
    WITH counted AS (
        SELECT placement, count(*) AS decisions FROM decision
        WHERE tenant_id = :t AND created_at >= :since GROUP BY placement
    )
    SELECT coalesce(p.name, c.placement) AS name, p.strategy, p.algorithm, p.holdout_share,
           p.exploration, p.default_offer_id, r.version AS policy_version,
           coalesce(c.decisions, 0) AS decisions
    FROM (SELECT * FROM placement WHERE tenant_id = :t) p
    FULL JOIN counted c ON c.placement = p.name
    LEFT JOIN policy_run r ON r.tenant_id = :t AND r.placement = coalesce(p.name, c.placement)
                          AND r.active
    ORDER BY 1
    """
)
_OFFER_STATS = text(
    f"""
    SELECT coalesce(d.segment_key, :none) AS segment, o ->> 'offer_id' AS offer_id,
           count(*) AS exposures,
           count(*) FILTER (WHERE {
        _CONVERTED.format(decision="d.decision_id", offer="o ->> 'offer_id'")
    }) AS conversions
    FROM decision d CROSS JOIN LATERAL jsonb_array_elements(d.offers) o
    WHERE d.tenant_id = :t AND d.placement = :p AND d.created_at >= :since
    GROUP BY 1, 2 ORDER BY 1, 2
    """
)
_SEGMENTS = text(
    """
    SELECT coalesce(d.segment_key, :none) AS key, max(s.name) AS name, count(*) AS decisions
    FROM decision d
    LEFT JOIN segmentation_run r ON r.tenant_id = :t AND r.active
    LEFT JOIN segment s ON s.run_id = r.id AND s.key = d.segment_key
    WHERE d.tenant_id = :t AND d.placement = :p AND d.created_at >= :since
    GROUP BY 1 ORDER BY 3 DESC, 1
    """
)
_OFFERS = text(
    """
    SELECT offer_id, name, retired_at IS NOT NULL AS retired FROM offer
    WHERE tenant_id = :t AND (:p = ANY(placements) OR offer_id = ANY(:shown))
    ORDER BY offer_id
    """
)
_SPAN = text(
    """
    SELECT min(created_at) AS first, max(created_at) AS last FROM decision
    WHERE tenant_id = :t AND placement = :p AND created_at >= :since
    """
)
_ALLOCATION = text(
    """
    SELECT date_trunc(:bucket, d.created_at, 'UTC') AS bucket,
           d.offers -> 0 ->> 'offer_id' AS offer_id, count(*) AS decisions
    FROM decision d
    WHERE d.tenant_id = :t AND d.placement = :p AND d.created_at >= :since
      AND d.strategy = :strategy AND jsonb_array_length(d.offers) > 0
      AND (CAST(:segment AS text) IS NULL OR coalesce(d.segment_key, :none) = :segment)
    GROUP BY 1, 2 ORDER BY 1, 2
    """
)
_FIRST_OFFERS = text(
    f"""
    SELECT d.offers -> 0 ->> 'offer_id' AS offer_id, count(*) AS exposures,
           count(*) FILTER (WHERE {
        _CONVERTED.format(decision="d.decision_id", offer="d.offers -> 0 ->> 'offer_id'")
    })
               AS conversions
    FROM decision d
    WHERE d.tenant_id = :t AND d.placement = :p AND d.created_at >= :since
      AND d.strategy = ANY(:strategies) AND jsonb_array_length(d.offers) > 0
    GROUP BY 1 ORDER BY 1
    """
)
_EXPERIMENTS = text(
    """
    SELECT id FROM experiment
    WHERE tenant_id = :t AND (CAST(:p AS text) IS NULL OR placement = :p)
    ORDER BY started_at DESC NULLS LAST, id DESC LIMIT :limit
    """
)


def _rows(session: Session, query: Any, **params: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in session.execute(query, params).mappings()]


def placements(session: Session, *, tenant_id: int, since: datetime) -> list[dict[str, Any]]:
    return _rows(session, _PLACEMENTS, t=tenant_id, since=since)


def offer_stats(
    session: Session, *, tenant_id: int, placement: str, since: datetime
) -> list[dict[str, Any]]:
    """Exposures and conversions per (segment, offer), every rank counted."""
    return _rows(session, _OFFER_STATS, t=tenant_id, p=placement, since=since, none=NO_SEGMENT_KEY)


def segments(
    session: Session, *, tenant_id: int, placement: str, since: datetime
) -> list[dict[str, Any]]:
    """Segments seen at the placement, named after the active segmentation where it has them."""
    return _rows(session, _SEGMENTS, t=tenant_id, p=placement, since=since, none=NO_SEGMENT_KEY)


def offers(
    session: Session, *, tenant_id: int, placement: str, shown: list[str]
) -> list[dict[str, Any]]:
    return _rows(session, _OFFERS, t=tenant_id, p=placement, shown=shown)


def span(
    session: Session, *, tenant_id: int, placement: str, since: datetime
) -> tuple[datetime | None, datetime | None]:
    row = session.execute(_SPAN, {"t": tenant_id, "p": placement, "since": since}).one()
    return row[0], row[1]


def allocation(
    session: Session,
    *,
    tenant_id: int,
    placement: str,
    since: datetime,
    bucket: Bucket,
    segment: str | None,
    strategy: Strategy,
) -> list[dict[str, Any]]:
    return _rows(
        session,
        _ALLOCATION,
        t=tenant_id,
        p=placement,
        since=since,
        bucket=bucket,
        segment=segment,
        none=NO_SEGMENT_KEY,
        strategy=strategy,
    )


def first_offers(
    session: Session, *, tenant_id: int, placement: str, since: datetime
) -> list[dict[str, Any]]:
    """Per first-ranked offer of the policies' decisions: exposures and conversions."""
    return _rows(
        session,
        _FIRST_OFFERS,
        t=tenant_id,
        p=placement,
        since=since,
        strategies=list(POLICY_STRATEGIES),
    )


def experiment_ids(
    session: Session, *, tenant_id: int, placement: str | None, limit: int
) -> list[int]:
    params = {"t": tenant_id, "p": placement, "limit": limit}
    return [int(row[0]) for row in session.execute(_EXPERIMENTS, params)]


_RECOMMENDER_RUNS = text(
    """
    SELECT id, status, progress, created_at, finished_at, error, metrics, data_window
    FROM recommender_run WHERE tenant_id = :t ORDER BY created_at DESC, id DESC LIMIT :limit
    """
)


def recommender_runs(session: Session, *, tenant_id: int, limit: int) -> list[dict[str, Any]]:
    """The tenant's latest recommender runs, newest first."""
    rows = session.execute(_RECOMMENDER_RUNS, {"t": tenant_id, "limit": limit}).mappings()
    return [dict(row) for row in rows]
