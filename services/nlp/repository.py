"""Reading what to analyse and storing analyses: plain SQL, flushed, never committed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session

from services.nlp.analysis.results import Analysis, ReviewText, Turn


@dataclass(frozen=True)
class Source:
    """A review or transcript to analyse, with whom and when it is about."""

    pk: int
    tenant_id: int
    customer_pk: int
    occurred_at: datetime


_REVIEWS = text(
    """
    SELECT r.id, r.tenant_id, r.customer_pk, r.created_at, r.text, r.rating
    FROM review r
    WHERE r.id = ANY(:ids) AND NOT EXISTS (
        SELECT 1 FROM text_analysis a
        WHERE a.source_kind = 'review' AND a.source_pk = r.id AND a.model_version = :version)
    ORDER BY r.id
    """
)
_TRANSCRIPTS = text(
    """
    SELECT t.id, t.tenant_id, t.customer_pk, t.started_at,
           array_agg(u.speaker ORDER BY u.turn_no), array_agg(u.text ORDER BY u.turn_no)
    FROM transcript t JOIN transcript_turn u ON u.transcript_pk = t.id
    WHERE t.id = ANY(:ids) AND NOT EXISTS (
        SELECT 1 FROM text_analysis a
        WHERE a.source_kind = 'transcript' AND a.source_pk = t.id AND a.model_version = :version)
    GROUP BY t.id
    ORDER BY t.id
    """
)


def pending_reviews(
    session: Session, pks: Sequence[int], version: str
) -> list[tuple[Source, ReviewText]]:
    """Reviews among ``pks`` that still exist and have no analysis by ``version``."""
    rows = session.execute(_REVIEWS, {"ids": list(pks), "version": version}).all()
    return [(Source(*row[:4]), ReviewText(text=row[4], rating=row[5])) for row in rows]


def pending_transcripts(
    session: Session, pks: Sequence[int], version: str
) -> list[tuple[Source, list[Turn]]]:
    rows = session.execute(_TRANSCRIPTS, {"ids": list(pks), "version": version}).all()
    return [
        (Source(*row[:4]), [Turn(s, t) for s, t in zip(row[4], row[5], strict=True)])
        for row in rows
    ]


_UPSERT = text(
    """
    INSERT INTO text_analysis (tenant_id, customer_pk, source_kind, source_pk, model_version,
        backend, status, language, label, score, confidence, details, occurred_at)
    SELECT u.tenant_id, u.customer_pk, :kind, u.source_pk, :version, :backend, u.status,
           u.language, u.label, u.score, u.confidence, CAST(u.details AS jsonb), u.occurred_at
    FROM unnest(CAST(:tenants AS bigint[]), CAST(:customers AS bigint[]),
                CAST(:sources AS bigint[]), CAST(:statuses AS text[]),
                CAST(:languages AS text[]), CAST(:labels AS text[]),
                CAST(:scores AS float8[]), CAST(:confidences AS float8[]),
                CAST(:details AS text[]), CAST(:occurred AS timestamptz[]))
         AS u(tenant_id, customer_pk, source_pk, status, language, label, score, confidence,
              details, occurred_at)
    ON CONFLICT (source_kind, source_pk, model_version) DO NOTHING
    RETURNING tenant_id, customer_pk
    """
)


def store_analyses(
    session: Session,
    *,
    kind: str,
    version: str,
    backend: str,
    results: Sequence[tuple[Source, Analysis]],
) -> dict[int, set[int]]:
    """Insert new analyses; the customers they are about, by tenant."""
    if not results:
        return {}
    params: dict[str, Any] = {
        "kind": kind,
        "version": version,
        "backend": backend,
        "tenants": [s.tenant_id for s, _ in results],
        "customers": [s.customer_pk for s, _ in results],
        "sources": [s.pk for s, _ in results],
        "statuses": [a.status for _, a in results],
        "languages": [a.language for _, a in results],
        "labels": [a.sentiment.label if a.sentiment else None for _, a in results],
        "scores": [a.sentiment.score if a.sentiment else None for _, a in results],
        "confidences": [a.sentiment.confidence if a.sentiment else None for _, a in results],
        "details": [orjson.dumps(a.details).decode() for _, a in results],
        "occurred": [s.occurred_at for s, _ in results],
    }
    changed: dict[int, set[int]] = {}
    for tenant_id, customer_pk in session.execute(_UPSERT, params):
        changed.setdefault(tenant_id, set()).add(customer_pk)
    return changed


_STORED = text(
    """
    SELECT a.model_version, a.backend, a.status, a.language, a.label, a.score, a.confidence,
           a.details, a.occurred_at, a.analyzed_at
    FROM text_analysis a
    JOIN {table} s ON s.id = a.source_pk AND s.tenant_id = :tenant
    WHERE a.source_kind = :kind AND s.{id_column} = :source_id
    ORDER BY a.analyzed_at DESC, a.id DESC
    """
)
_SOURCE_TABLES = {"review": ("review", "review_id"), "transcript": ("transcript", "transcript_id")}


def source_exists(session: Session, *, tenant_id: int, kind: str, source_id: str) -> bool:
    table, id_column = _SOURCE_TABLES[kind]
    query = text(f"SELECT 1 FROM {table} WHERE tenant_id = :tenant AND {id_column} = :source_id")
    return session.execute(query, {"tenant": tenant_id, "source_id": source_id}).first() is not None


def stored_analyses(
    session: Session, *, tenant_id: int, kind: str, source_id: str
) -> list[dict[str, Any]]:
    """Every analysis of one of the tenant's reviews or transcripts, newest first."""
    table, id_column = _SOURCE_TABLES[kind]
    query = text(_STORED.text.format(table=table, id_column=id_column))
    rows = session.execute(query, {"tenant": tenant_id, "kind": kind, "source_id": source_id})
    return [dict(row._mapping) for row in rows]
