"""What changed between two runs: who would move from which segment to which, and why.

Both runs' models assign the tenant's current feature vectors, so the comparison is of
the two segmentations on the same customers (not of data that changed in between). A
flow's "why" is the features whose standardized means differ most between the old and
the new segment's profile: what sets the segment the customers moved to apart from the
one they left.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlmodel import Session

from services.segment.assignment.runs import ActiveRun, load_run
from services.segment.features import load_matrix
from services.segment.modeling.labels import label
from services.segment.segments.repository import segments_of_run
from shared.contracts import rules as stored
from shared.contracts.stored import read_stored

REASONS = 3  # features named per flow
_CUSTOMER_IDS = text("SELECT id, customer_id FROM customer WHERE id = ANY(:pks)")


class FeatureShift(BaseModel):
    feature: str
    label: str = Field(description="the feature as a person reads it")
    from_mean: float | None = Field(description="the left segment's mean, in the feature's units")
    to_mean: float | None = Field(description="the new segment's mean")
    shift: float = Field(description="difference of standardized means (new - old)")


class Flow(BaseModel):
    from_key: str
    from_name: str | None
    to_key: str
    to_name: str | None
    customers: int
    sample: list[str] = Field(description="some of the customers (ids), up to the limit")
    why: list[FeatureShift] = Field(description="largest shifts first; empty for stayers")


class RunChanges(BaseModel):
    segmentation_id: int
    against: int = Field(description="the run compared with (the 'from' side)")
    customers: int
    moved: int = Field(description="customers in another segment than under `against`")
    flows: list[Flow] = Field(description="every (from, to) pair with customers, largest first")


class RunNotComparable(ValueError):  # noqa: N818 (the project names errors X...)
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _profiles(session: Session, tenant_id: int, run_id: int) -> dict[str, Any]:
    found = {}
    for row in segments_of_run(session, tenant_id=tenant_id, run_id=run_id):
        profile = read_stored(stored.SegmentProfile, row.profile or {}, where=f"run {run_id}")
        found[row.key] = (row.name, {f.name: f for f in profile.features})
    return found


def _why(old: dict[str, Any], new: dict[str, Any]) -> list[FeatureShift]:
    shifts = []
    for name in old.keys() & new.keys():
        before, after = old[name], new[name]
        if before.lift is None or after.lift is None:
            continue
        shifts.append(
            FeatureShift(
                feature=name,
                label=label(name).text,
                from_mean=before.mean,
                to_mean=after.mean,
                shift=after.lift - before.lift,
            )
        )
    shifts.sort(key=lambda s: (-abs(s.shift), s.feature))
    return shifts[:REASONS]


def _pairs(
    from_keys: list[str], to_keys: list[str], pks: np.ndarray, sample: int
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], list[int]]]:
    """Customers per (from, to) pair and the first ``sample`` customer pks of each, with
    integer codes (a tenant has up to millions of customers, a run a few segments)."""
    if not from_keys:
        return {}, {}
    old_keys, old_codes = np.unique(np.asarray(from_keys), return_inverse=True)
    new_keys, new_codes = np.unique(np.asarray(to_keys), return_inverse=True)
    codes = old_codes.astype(np.int64) * len(new_keys) + new_codes
    order = np.argsort(codes, kind="stable")
    found, starts, counts = np.unique(codes[order], return_index=True, return_counts=True)
    pairs, samples = {}, {}
    for code, start, count in zip(found.tolist(), starts.tolist(), counts.tolist(), strict=True):
        pair = (str(old_keys[code // len(new_keys)]), str(new_keys[code % len(new_keys)]))
        pairs[pair] = int(count)
        samples[pair] = pks[order[start : start + min(count, sample)]].tolist()
    return pairs, samples


def _model(session: Session, run_id: int, field: str) -> ActiveRun | None:
    try:
        return load_run(session, run_id)
    except (KeyError, TypeError):  # a succeeded run stored without its model
        raise RunNotComparable(field, f"run {run_id} has no model to assign with") from None


def run_changes(
    session: Session, *, tenant_id: int, run_id: int, against: int, sample: int
) -> RunChanges:
    """Both runs must be the tenant's succeeded runs on one feature set (the caller has
    checked they are the tenant's); `RunNotComparable` otherwise."""
    new, old = _model(session, run_id, "segmentation_id"), _model(session, against, "against")
    if new is None:
        raise RunNotComparable("segmentation_id", "the run has not succeeded")
    if old is None:
        raise RunNotComparable("against", "the run to compare with has not succeeded")
    if new.feature_set != old.feature_set:
        raise RunNotComparable("against", "the runs were trained on different feature sets")
    matrix = load_matrix(session, tenant_id=tenant_id, feature_set=new.feature_set)
    to_keys = new.segmenter.predict_keys(matrix.values) if len(matrix) else []
    from_keys = old.segmenter.predict_keys(matrix.values) if len(matrix) else []
    pairs, samples = _pairs(from_keys, to_keys, matrix.customer_pks, sample)
    profiles_old = _profiles(session, tenant_id, against)
    profiles_new = _profiles(session, tenant_id, run_id)
    wanted = [pk for chosen in samples.values() for pk in chosen]
    ids = dict(session.execute(_CUSTOMER_IDS, {"pks": wanted}).tuples().all()) if wanted else {}
    flows = []
    for (from_key, to_key), count in sorted(pairs.items(), key=lambda p: (-p[1], p[0])):
        old_name, old_profile = profiles_old.get(from_key, (None, {}))
        new_name, new_profile = profiles_new.get(to_key, (None, {}))
        flows.append(
            Flow(
                from_key=from_key,
                from_name=old_name,
                to_key=to_key,
                to_name=new_name,
                customers=count,
                sample=[str(ids[pk]) for pk in samples[(from_key, to_key)] if pk in ids],
                why=[] if from_key == to_key else _why(old_profile, new_profile),
            )
        )
    moved = sum(count for (a, b), count in pairs.items() if a != b)
    return RunChanges(
        segmentation_id=run_id,
        against=against,
        customers=len(matrix),
        moved=moved,
        flows=flows,
    )
