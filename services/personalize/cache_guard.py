"""Personalize's Redis cache rebuilt when Redis lost its data.

The hot path reads only Redis: each customer's segment and consent, each placement's
snapshot. They are written when something changes, so a Redis that restarts without its
data (no persistence, or a failover to an empty replica) would leave customers without
their segment and placements unknown (404) until each changed again. A marker key written
after a full rebuild tells a surviving cache from a lost one: the decision-log timer (every
second) checks it and, when it is gone, rebuilds every tenant's customers and placements
from Postgres before setting it again. A rebuild cut short by another loss is redone.
"""

from __future__ import annotations

import logging

from redis import Redis
from sqlalchemy import text
from sqlmodel import Session

from services.personalize import tasks
from services.personalize.snapshots import publish
from shared.reliable import Subject

log = logging.getLogger(__name__)
MARKER = "personalize:cache-built"
_TENANTS = text(
    "SELECT id FROM tenant t WHERE EXISTS (SELECT 1 FROM customer c WHERE c.tenant_id = t.id)"
)


def rebuild_if_lost(session: Session, redis: Redis, secret: str) -> bool:
    """Rebuild the cache when its marker is missing; whether it did."""
    if redis.exists(MARKER):
        return False
    tenants = session.execute(_TENANTS).scalars().all()
    # Only the tenant of a subject is read: every customer of each tenant is cached.
    subjects = [Subject(0, int(tenant), 0, None, 0) for tenant in tenants]
    tasks.refresh_segmentation(session, redis, secret, subjects)
    placements = session.execute(text("SELECT tenant_id, name FROM placement")).all()
    for tenant_id, name in placements:
        publish(session, redis, tenant_id=tenant_id, placement=name)
    redis.set(MARKER, "1")
    log.warning(
        "personalize cache rebuilt: %d tenants, %d placements", len(tenants), len(placements)
    )
    return True
