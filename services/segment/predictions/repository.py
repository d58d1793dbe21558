"""Reading prediction runs and scores for the API (their writes belong to ``runs``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

from shared.cursors import position

RUN_COLUMNS = """
    r.id, r.status, r.progress, r.model, r.as_of, r.horizon_days, r.feature_set, r.params,
    r.data_window, r.metrics, r.artifact, r.library_versions, r.seed, r.active, r.error,
    r.created_at, r.started_at, r.finished_at
"""
_RUN = text(f"SELECT {RUN_COLUMNS} FROM prediction_run r WHERE r.tenant_id = :t AND r.id = :id")
_RUNS = text(
    f"""
    SELECT {RUN_COLUMNS} FROM prediction_run r
    WHERE r.tenant_id = :t
      AND (CAST(:before_at AS timestamptz) IS NULL OR (r.created_at, r.id) < (:before_at, :before))
    ORDER BY r.created_at DESC, r.id DESC LIMIT :limit
    """
)
_SCORES = text(
    """
    SELECT s.customer_pk, c.customer_id, s.probability, s.expected_spend, s.reasons
    FROM prediction_score s JOIN customer c ON c.id = s.customer_pk
    WHERE s.run_id = :run AND s.tenant_id = :t AND s.customer_pk > :after
    ORDER BY s.customer_pk LIMIT :limit
    """
)
_ALL_SCORES = text(
    """
    SELECT c.customer_id, s.probability
    FROM prediction_score s JOIN customer c ON c.id = s.customer_pk
    WHERE s.run_id = :run AND s.tenant_id = :t ORDER BY s.customer_pk
    """
)
_CUSTOMER = text(
    """
    SELECT r.model, s.probability, s.expected_spend, s.reasons, r.id AS prediction_id,
           r.as_of, r.horizon_days
    FROM prediction_run r
    JOIN prediction_score s ON s.run_id = r.id AND s.customer_pk = :pk
    WHERE r.tenant_id = :t AND r.active ORDER BY r.model
    """
)
_TOP = text(
    """
    SELECT c.customer_id, s.probability, s.reasons
    FROM prediction_run r
    JOIN prediction_score s ON s.run_id = r.id
    JOIN customer c ON c.id = s.customer_pk
    WHERE r.tenant_id = :t AND r.model = :model AND r.active
    ORDER BY s.probability DESC, s.customer_pk LIMIT :limit
    """
)
CSV_ROWS_PER_FETCH = 10_000


def read_run(session: Session, *, tenant_id: int, run_id: int) -> dict[str, Any] | None:
    row = session.execute(_RUN, {"t": tenant_id, "id": run_id}).mappings().first()
    return None if row is None else {**row, "params": row["params"] or {}}


def list_runs(
    session: Session, *, tenant_id: int, limit: int, before: int | None
) -> list[dict[str, Any]]:
    before_at = position(
        session, table="prediction_run", tenant_id=tenant_id, cursor=before, field="before"
    )
    params = {"t": tenant_id, "limit": limit, "before": before, "before_at": before_at}
    rows = session.execute(_RUNS, params).mappings()
    return [{**row, "params": row["params"] or {}} for row in rows]


def scores(
    session: Session, *, tenant_id: int, run_id: int, after: int, limit: int
) -> list[dict[str, Any]]:
    params = {"t": tenant_id, "run": run_id, "after": after, "limit": limit}
    return [dict(row) for row in session.execute(_SCORES, params).mappings()]


def stream_scores(engine: Engine, *, tenant_id: int, run_id: int) -> Iterator[tuple[str, float]]:
    """Every ``(customer_id, probability)`` of the run, fetched in chunks from a
    server-side cursor: a million customers never sit in memory at once."""
    with engine.connect() as connection:
        result = connection.execution_options(
            stream_results=True, yield_per=CSV_ROWS_PER_FETCH
        ).execute(_ALL_SCORES, {"t": tenant_id, "run": run_id})
        for customer_id, probability in result:
            yield str(customer_id), float(probability)


def customer_predictions(session: Session, *, tenant_id: int, pk: int) -> list[dict[str, Any]]:
    """The active runs' scores of one customer, one per model."""
    rows = session.execute(_CUSTOMER, {"t": tenant_id, "pk": pk}).mappings()
    return [{**row, "reasons": row["reasons"] or []} for row in rows]


def top_scores(session: Session, *, tenant_id: int, model: str, limit: int) -> list[dict[str, Any]]:
    """The highest probabilities of the model's active run, with their reasons."""
    rows = session.execute(_TOP, {"t": tenant_id, "model": model, "limit": limit}).mappings()
    return [dict(row) for row in rows]
