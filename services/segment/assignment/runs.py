"""Loading trained runs, and making one the tenant's active segmentation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session

from services.segment.assignment.memberships import write_memberships
from services.segment.features import load_matrix
from services.segment.modeling.segmenter import Segmenter


@dataclass(frozen=True)
class ActiveRun:
    id: int
    tenant_id: int
    feature_set: str
    segmenter: Segmenter
    rules: dict[str, list[dict[str, Any]]]  # segment key -> surrogate rule paths


_ACTIVE = text("SELECT id FROM segmentation_run WHERE tenant_id = :tenant AND active")
_RUN = text(
    "SELECT id, tenant_id, feature_set, artifact FROM segmentation_run "
    "WHERE id = :run AND status = 'succeeded'"
)
_RULES = text("SELECT key, rules FROM segment WHERE run_id = :run")


def active_run_id(session: Session, tenant_id: int) -> int | None:
    found = session.execute(_ACTIVE, {"tenant": tenant_id}).scalar_one_or_none()
    return int(found) if found is not None else None


def load_run(session: Session, run_id: int) -> ActiveRun | None:
    """A succeeded run, ready to assign customers (cached: runs never change once done)."""
    row = session.execute(_RUN, {"run": run_id}).one_or_none()
    if row is None:
        return None
    rules = {key: (r or {}).get("paths", []) for key, r in session.execute(_RULES, {"run": run_id})}
    return _cached(
        row.id, row.tenant_id, row.feature_set, orjson.dumps(row.artifact), orjson.dumps(rules)
    )


@lru_cache(maxsize=16)
def _cached(
    run_id: int, tenant_id: int, feature_set: str, artifact: bytes, rules: bytes
) -> ActiveRun:
    model = orjson.loads(artifact)["model"]
    return ActiveRun(
        run_id, tenant_id, feature_set, Segmenter.from_artifact(model), orjson.loads(rules)
    )


_DEACTIVATE = text(
    "UPDATE segmentation_run SET active = false WHERE tenant_id = :tenant AND active"
)
_ACTIVATE = text("UPDATE segmentation_run SET active = true, activated_at = now() WHERE id = :run")


def activate(session: Session, run: ActiveRun, *, reason: str) -> int:
    """Make ``run`` the tenant's active one and re-assign every customer; changes made."""
    session.execute(_DEACTIVATE, {"tenant": run.tenant_id})
    session.execute(_ACTIVATE, {"run": run.id})
    matrix = load_matrix(session, tenant_id=run.tenant_id, feature_set=run.feature_set)
    if not len(matrix):
        return 0
    keys = run.segmenter.predict_keys(matrix.values)
    moved = write_memberships(
        session,
        tenant_id=run.tenant_id,
        run_id=run.id,
        pks=matrix.customer_pks.tolist(),
        keys=keys,
        reasons=[{"trigger": reason, "run_id": run.id}] * len(keys),
    )
    return len(moved)
