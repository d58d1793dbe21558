"""Near-real-time re-assignment: a customer's activity changed, so are they still where
they were? Features are refreshed in SQL for just these customers, the active model
assigns them, and a change is written with its reason: the surrogate rule the customer
now satisfies and the features that moved them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlmodel import Session

from services.segment.assignment.memberships import current_keys, write_memberships
from services.segment.assignment.reasons import rule_reason
from services.segment.assignment.runs import ActiveRun, active_run_id, load_run
from services.segment.features import DEFAULT_FEATURE_SET, compute_features, get_feature_set
from services.segment.features.sql import vectors_sql
from shared.contracts import PERSONALIZE_REFRESH_CUSTOMERS
from shared.outbox import enqueue_customers

MOVED_FEATURES = 3


def refresh_customers(session: Session, *, tenant_id: int, customer_pks: Sequence[int]) -> int:
    """Refresh features and segments of these customers; how many changed segment."""
    run_id = active_run_id(session, tenant_id)
    run = load_run(session, run_id) if run_id is not None else None
    compute_features(
        session,
        tenant_id=tenant_id,
        customer_pks=customer_pks,
        feature_set=run.feature_set if run else DEFAULT_FEATURE_SET,
    )
    if run is None:
        return 0  # no segmentation yet: the features are ready for the first one
    vectors = vectors_sql(
        get_feature_set(run.feature_set),
        where="f.tenant_id = :tenant AND f.customer_pk = ANY(:pks)",
    )
    rows = sorted(session.execute(text(vectors), {"tenant": tenant_id, "pks": list(customer_pks)}))
    if not rows:
        return 0
    pks = [int(pk) for pk, _, _ in rows]
    values = np.asarray([vector for _, _, vector in rows], dtype=np.float64)
    keys = run.segmenter.predict_keys(values)
    before = current_keys(session, tenant_id, pks)
    reasons = [_reason(run, values[i], before.get(pk), keys[i]) for i, pk in enumerate(pks)]
    moved = write_memberships(
        session, tenant_id=tenant_id, run_id=run.id, pks=pks, keys=keys, reasons=reasons
    )
    enqueue_customers(
        session, tenant_id=tenant_id, task_name=PERSONALIZE_REFRESH_CUSTOMERS, customer_pks=moved
    )
    return len(moved)


def _reason(run: ActiveRun, x: np.ndarray, old: str | None, new: str) -> dict[str, Any]:
    reason: dict[str, Any] = {"trigger": "activity", "run_id": run.id}
    if old == new:
        return reason
    # ``x`` is the whole stored vector; the model may use a subset of its columns.
    reason |= rule_reason(run.rules, features=run.segmenter.input_features_, x=x, key=new)
    centroids = run.segmenter.centroids_by_key()
    if old in centroids and new in centroids:
        reason["moved"] = _moved_features(run, x, centroids[old], centroids[new])
    return reason


def _moved_features(run: ActiveRun, x: np.ndarray, old: list[float], new: list[float]) -> list[str]:
    """Features where the customer is now nearer the new segment's centre than the old's."""
    used = x[run.segmenter.columns_]
    scaled = run.segmenter.scaler_.transform(np.asarray([used, old, new], dtype=np.float64))
    pull = np.abs(scaled[0] - scaled[1]) - np.abs(scaled[0] - scaled[2])
    order = np.argsort(-pull)[:MOVED_FEATURES]
    names = run.segmenter.feature_names_
    return [names[i] for i in order if pull[i] > 0]
