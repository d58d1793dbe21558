"""Loading trained runs, and making one the tenant's active segmentation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session, select

from services.segment.assignment.memberships import EncodedReasons, write_memberships
from services.segment.assignment.reasons import rule_reasons
from services.segment.features import FeatureMatrix, load_matrix
from services.segment.modeling.segmenter import Segmenter
from services.segment.segmentations.runs import set_active
from shared.contracts import PERSONALIZE_REFRESH_SEGMENTATION
from shared.contracts.rules import SegmentRules
from shared.contracts.stored import read_stored
from shared.models import Segment
from shared.outbox import enqueue
from shared.runs import RunStatus


@dataclass(frozen=True)
class ActiveRun:
    id: int
    tenant_id: int
    feature_set: str
    segmenter: Segmenter
    rules: dict[str, SegmentRules]  # by segment key


_ACTIVE = text("SELECT id FROM segmentation_run WHERE tenant_id = :tenant AND active")
_RUN = text(
    "SELECT id, tenant_id, feature_set, artifact FROM segmentation_run "
    "WHERE id = :run AND status = :succeeded_status"
)


def active_run_id(session: Session, tenant_id: int) -> int | None:
    found = session.execute(_ACTIVE, {"tenant": tenant_id}).scalar_one_or_none()
    return int(found) if found is not None else None


def load_run(session: Session, run_id: int) -> ActiveRun | None:
    """A succeeded run, ready to assign customers (cached: a run never changes once done)."""
    if run_id in _LOADED:
        return _LOADED[run_id]
    row = session.execute(
        _RUN, {"run": run_id, "succeeded_status": RunStatus.SUCCEEDED}
    ).one_or_none()
    if row is None:
        return None
    rules = _rules(session, run_id)
    segmenter = Segmenter.from_artifact(row.artifact["model"])
    run = ActiveRun(row.id, row.tenant_id, row.feature_set, segmenter, rules)
    if len(_LOADED) >= MAX_LOADED:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[run_id] = run
    return run


def _rules(session: Session, run_id: int) -> dict[str, SegmentRules]:
    found = session.exec(select(Segment.key, Segment.rules).where(Segment.run_id == run_id))
    return {
        key: read_stored(
            SegmentRules, rules or {}, where=f"rules of segment {key!r} of run {run_id}"
        )
        for key, rules in found
    }


MAX_LOADED = 16  # runs kept per worker process: a handful of tenants' active ones
_LOADED: dict[int, ActiveRun] = {}


def activate(
    session: Session, run: ActiveRun, *, reason: str, matrix: FeatureMatrix | None = None
) -> int:
    """Make ``run`` the tenant's active one and re-assign every customer; changes made.

    ``matrix``: the tenant's vectors when the caller has them already (the run was just
    trained on them); read from the database otherwise."""
    set_active(session, tenant_id=run.tenant_id, run_id=run.id)
    if matrix is None or matrix.feature_set != run.feature_set:
        matrix = load_matrix(session, tenant_id=run.tenant_id, feature_set=run.feature_set)
    if not len(matrix):
        return 0
    keys = run.segmenter.predict_keys(matrix.values)
    moved = write_memberships(
        session,
        tenant_id=run.tenant_id,
        run_id=run.id,
        pks=matrix.customer_pks,
        keys=keys,
        reasons=_activation_reasons(run, matrix, keys, reason),
    )
    enqueue(
        session,
        tenant_id=run.tenant_id,
        task_name=PERSONALIZE_REFRESH_SEGMENTATION,
        subject_ids=[run.id],
    )
    return len(moved)


def _activation_reasons(
    run: ActiveRun, matrix: FeatureMatrix, keys: Sequence[str], trigger: str
) -> EncodedReasons:
    """Each customer's reason: the activation, and the rule of their new segment."""
    distinct, numbers = rule_reasons(
        run.rules, features=matrix.names, values=matrix.values, keys=keys
    )
    return EncodedReasons(
        [{"trigger": trigger, "run_id": run.id, **rule} for rule in distinct], numbers
    )
