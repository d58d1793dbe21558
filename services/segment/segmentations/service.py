"""Asking for a training or an activation: the run row and its outbox row, in one transaction.

The worker does the work (``SEGMENT_TRAIN_SEGMENTATION``, ``SEGMENT_ACTIVATE_SEGMENTATION``);
the API never calls Celery, so a request acknowledged here is never lost with Redis.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from services.segment.features.registry import FEATURE_SETS
from services.segment.segmentations import repository as repo
from services.segment.segmentations.schemas import SegmentationCreate
from services.segment.settings import SegmentSettings
from shared.contracts import SEGMENT_ACTIVATE_SEGMENTATION, SEGMENT_TRAIN_SEGMENTATION
from shared.outbox import enqueue

DENSITY_ALGORITHMS = frozenset({"dbscan", "hdbscan"})


class SegmentationDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    def __init__(self, run_id: int) -> None:
        super().__init__(f"no segmentation run {run_id}")
        self.run_id = run_id


class SegmentationNotSucceeded(RuntimeError):  # noqa: N818
    def __init__(self, run_id: int, status: str) -> None:
        super().__init__(
            f"segmentation run {run_id} is {status}; only a succeeded run can be activated"
        )
        self.run_id, self.status = run_id, status


class SegmentationRequestInvalid(ValueError):  # noqa: N818
    """Input that is well-formed but does not fit the service's feature sets or algorithm."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def resolve_params(body: SegmentationCreate, settings: SegmentSettings) -> dict[str, Any]:
    """The request with the service's defaults filled in, checked against what exists."""
    params: dict[str, Any] = {
        "algorithm": body.algorithm or settings.segment_algorithm,
        "k": body.k if body.k is not None else settings.segment_k,
        "feature_set": body.feature_set or settings.segment_feature_set,
        "seed": body.seed if body.seed is not None else settings.segment_seed,
        "sample_size": body.sample_size or settings.segment_sample_size,
        "promote": body.promote,
    }
    if params["feature_set"] not in FEATURE_SETS:
        known = ", ".join(sorted(FEATURE_SETS))
        raise SegmentationRequestInvalid("feature_set", f"unknown feature set (known: {known})")
    if params["algorithm"] in DENSITY_ALGORITHMS:
        if body.k is not None and body.k != "auto":
            raise SegmentationRequestInvalid(
                "k", f"{params['algorithm']} finds its own number of segments; leave k out"
            )
        params["k"] = "auto"
    return params


def request_segmentation(
    session: Session,
    *,
    tenant_id: int,
    requested_by: str,
    body: SegmentationCreate,
    settings: SegmentSettings,
) -> int:
    """A pending run and the outbox row that gets it trained; the run's id."""
    params = resolve_params(body, settings)
    run_id = repo.insert_run(
        session,
        tenant_id=tenant_id,
        algorithm=params["algorithm"],
        feature_set=params["feature_set"],
        seed=params["seed"],
        params={**params, "requested_by": requested_by},
    )
    enqueue(
        session, tenant_id=tenant_id, task_name=SEGMENT_TRAIN_SEGMENTATION, subject_ids=[run_id]
    )
    return run_id


def request_activation(session: Session, *, tenant_id: int, run_id: int) -> None:
    """Queue the activation of a succeeded run (the worker flips ``active`` and re-assigns)."""
    status = repo.lock_run_status(session, tenant_id=tenant_id, run_id=run_id)
    if status is None:
        raise SegmentationDoesNotExist(run_id)
    if status != "succeeded":
        raise SegmentationNotSucceeded(run_id, status)
    enqueue(
        session, tenant_id=tenant_id, task_name=SEGMENT_ACTIVATE_SEGMENTATION, subject_ids=[run_id]
    )
