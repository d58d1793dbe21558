"""What segment erases of a customer beyond the Postgres cascade: the map in run artifacts.

A run's artifact keeps a sample of the customers drawn on the 2-D map (``projection``:
``points`` and ``pca_points``, each ``[x, y, segment key]``). The points carry no id, but
each is one customer's values projected; once the customer's features are gone (the
cascade ran first) nothing tells which point was theirs, so every map of the tenant is
emptied. The dashboard then shows no map until the next training draws a new one, from
data that no longer holds the customer.

Imported by the segment worker, which registers ``segment.erase_customer``.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from services.segment.settings import get_segment_settings
from services.segment.training.pipeline import LOCK_CLASS
from shared.db import create_db_engine
from shared.erasure import ErasureStore, ErasureSubject, erasure_worker
from shared.reliable import WorkerEngine

ARTIFACTS_STORE = "segment-artifacts"

# Waits for a training of the tenant to end (it holds this lock for its whole length): a
# run that loaded its data before the cascade would otherwise save a map drawn with the
# customer after it was emptied. Held to commit, so no run starts halfway either.
_WAIT_FOR_TRAINING = text("SELECT pg_advisory_xact_lock(:c, :t)")
_MAP_ARRAY = "jsonb_typeof(artifact -> 'projection' -> '{0}') = 'array'"
_EMPTY_MAPS = text(
    f"""
    WITH drawn AS (
        SELECT id,
               coalesce(jsonb_array_length(CASE WHEN {_MAP_ARRAY.format("points")}
                   THEN artifact -> 'projection' -> 'points' END), 0)
             + coalesce(jsonb_array_length(CASE WHEN {_MAP_ARRAY.format("pca_points")}
                   THEN artifact -> 'projection' -> 'pca_points' END), 0) AS n
        FROM segmentation_run
        WHERE tenant_id = :t AND jsonb_typeof(artifact -> 'projection') = 'object'
        FOR UPDATE
    )
    UPDATE segmentation_run r
    SET artifact = jsonb_set(jsonb_set(r.artifact, '{{projection,points}}', '[]'),
                             '{{projection,pca_points}}', '[]')
    FROM drawn WHERE r.id = drawn.id AND drawn.n > 0
    RETURNING drawn.n
    """
)


def erase_artifacts(session: Session, subject: ErasureSubject) -> dict[str, int]:
    session.execute(_WAIT_FOR_TRAINING, {"c": LOCK_CLASS, "t": subject.tenant_id})
    emptied = [int(n) for n in session.execute(_EMPTY_MAPS, {"t": subject.tenant_id}).scalars()]
    return {"segmentation_run": len(emptied), "map_points": sum(emptied)}


STORES = (ErasureStore(ARTIFACTS_STORE, erase_artifacts),)

_settings = get_segment_settings()
erasure_worker(
    "segment",
    STORES,
    engine=WorkerEngine(lambda: create_db_engine(_settings, pool_size=1)),
    max_attempts=_settings.max_task_attempts,
)
