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

from sqlmodel import Session

from services.segment.segmentations.runs import SEGMENTATION, empty_maps
from services.segment.settings import get_segment_settings
from shared.db import create_db_engine
from shared.erasure import ErasureStore, ErasureSubject, erasure_worker
from shared.reliable import WorkerEngine

ARTIFACTS_STORE = "segment-artifacts"


def erase_artifacts(session: Session, subject: ErasureSubject) -> dict[str, int]:
    # A training of the tenant that loaded its data before the cascade would otherwise
    # save a map drawn with the customer after it was emptied.
    SEGMENTATION.wait_for_runner(session, subject.tenant_id)
    emptied = empty_maps(session, tenant_id=subject.tenant_id)
    return {"segmentation_run": len(emptied), "map_points": sum(emptied)}


STORES = (ErasureStore(ARTIFACTS_STORE, erase_artifacts),)

_settings = get_segment_settings()
erasure_worker(
    "segment",
    STORES,
    engine=WorkerEngine(lambda: create_db_engine(_settings, pool_size=1)),
    max_attempts=_settings.max_task_attempts,
)
