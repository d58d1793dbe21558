"""The tenant's active run, as the next training sees it: who was where, and the centres."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from services.segment.modeling.segmenter import Segmenter


@dataclass(frozen=True)
class PreviousRun:
    run_id: int
    members: dict[int, str]
    centroids: dict[str, list[float]] | None
    used_keys: list[str]


def previous_run(session: Session, tenant_id: int) -> PreviousRun | None:
    """The tenant's active run: its members and centroids keep segment keys stable."""
    row = session.execute(
        text("SELECT id, artifact FROM segmentation_run WHERE tenant_id = :t AND active"),
        {"t": tenant_id},
    ).one_or_none()
    if row is None:
        return None
    used = session.execute(
        text("SELECT DISTINCT key FROM segment WHERE tenant_id = :t"), {"t": tenant_id}
    ).scalars()
    members = {
        int(pk): str(key)
        for pk, key in session.execute(
            text("SELECT customer_pk, segment_key FROM segment_membership WHERE tenant_id = :t"),
            {"t": tenant_id},
        )
    }
    model = (row.artifact or {}).get("model")
    centroids = Segmenter.from_artifact(model).centroids_by_key() if model else None
    return PreviousRun(row.id, members, centroids, [str(k) for k in used])
