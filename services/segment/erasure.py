"""What segment erases of a customer beyond the Postgres cascade: the map in run artifacts.

A run's artifact keeps a sample of the customers drawn on the 2-D map (``projection``:
``points`` and ``pca_points``, each ``[x, y, segment key]``). The points carry no id, but
each is one customer's values projected; once the customer's features are gone (the
cascade ran first) nothing tells which point was theirs, so every map of the tenant is
emptied. The dashboard then shows no map until the next training draws a new one, from
data that no longer holds the customer.

Pending webhook deliveries: each is built from its change rows at every attempt, and
the customer's rows went with the cascade, so no later attempt carries the customer;
deliveries left with no change are dropped here (nothing is left to send).

Imported by the segment worker, which registers ``segment.erase_customer``.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from services.segment.segmentations.runs import SEGMENTATION, empty_maps
from services.segment.settings import get_segment_settings
from shared.db import create_db_engine
from shared.erasure import ErasureStore, ErasureSubject, erasure_worker
from shared.reliable import WorkerEngine

ARTIFACTS_STORE = "segment-artifacts"
WEBHOOKS_STORE = "segment-webhooks"
_ERASE_ITEMS = text(
    "DELETE FROM webhook_delivery_item WHERE tenant_id = :tenant AND customer_pk = :pk"
)
_DROP_EMPTY_DELIVERIES = text(
    """
    DELETE FROM webhook_delivery d
    WHERE d.tenant_id = :tenant AND d.status = 'pending'
      AND NOT EXISTS (SELECT 1 FROM webhook_delivery_item i WHERE i.delivery_id = d.id)
    """
)


def erase_artifacts(session: Session, subject: ErasureSubject) -> dict[str, int]:
    # A training of the tenant that loaded its data before the cascade would otherwise
    # save a map drawn with the customer after it was emptied.
    SEGMENTATION.wait_for_runner(session, subject.tenant_id)
    emptied = empty_maps(session, tenant_id=subject.tenant_id)
    return {"segmentation_run": len(emptied), "map_points": sum(emptied)}


def erase_webhooks(session: Session, subject: ErasureSubject) -> dict[str, int]:
    params = {"tenant": subject.tenant_id, "pk": subject.customer_pk}
    items = session.execute(_ERASE_ITEMS, params).rowcount  # type: ignore[attr-defined]
    emptied = session.execute(_DROP_EMPTY_DELIVERIES, params).rowcount  # type: ignore[attr-defined]
    return {"webhook_delivery_item": int(items), "webhook_delivery": int(emptied)}


STORES = (
    ErasureStore(ARTIFACTS_STORE, erase_artifacts),
    ErasureStore(WEBHOOKS_STORE, erase_webhooks),
)

_settings = get_segment_settings()
erasure_worker(
    "segment",
    STORES,
    engine=WorkerEngine(lambda: create_db_engine(_settings, pool_size=1)),
    max_attempts=_settings.max_task_attempts,
)
