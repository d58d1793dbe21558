"""The policy run: owner of the ``policy_run`` table (no other module writes it).

A placement's bandit is one active run, ``running`` while it learns: every batch of
decisions and feedback updates its counts in place and bumps its ``version`` (logged
with each decision). Every ``snapshot_every_s`` the run is closed as ``succeeded`` (a
frozen, versioned snapshot to evaluate or roll back to) and a new active run continues
from its counts. A run's ``params`` are what it served with: the placement's exploration
share is its ``epsilon``, and a new share closes the run the same way (`explore`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from services.personalize.context import CONTEXTUAL_STATE, contextual_policy
from services.personalize.modeling.bandit import SegmentThompson
from services.personalize.modeling.contextual import LinearThompson
from shared.models.personalize import Placement, PolicyRun
from shared.runs import RunBook, RunStatus, library_versions

_BOOK = RunBook(PolicyRun)
ALGORITHM = "thompson"
_CLOSED_MEANWHILE = 3  # closed by others while this transaction waited, at most


def _state(
    policy: SegmentThompson, contextual: LinearThompson | None, before: dict[str, Any] | None
) -> dict[str, Any]:
    """The run's state: the segment bandit, with the linear policy learnt next to it."""
    state = policy.to_dict()
    if contextual is not None:
        state[CONTEXTUAL_STATE] = contextual.to_dict()
    elif before is not None and CONTEXTUAL_STATE in before:
        state[CONTEXTUAL_STATE] = before[CONTEXTUAL_STATE]
    return state


def _new(
    tenant_id: int,
    placement: str,
    policy: SegmentThompson,
    version: int,
    state: dict[str, Any] | None = None,
) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "placement": placement,
        "version": version,
        "status": RunStatus.RUNNING,
        "algorithm": ALGORITHM,
        "params": policy.get_params(),
        "state": state if state is not None else policy.to_dict(),
        "library_versions": library_versions(),
        "active": True,
        "started_at": datetime.now(UTC),
    }


def _exploration(session: Session, tenant_id: int, placement: str) -> float:
    share = session.exec(
        select(Placement.exploration).where(
            Placement.tenant_id == tenant_id, Placement.name == placement
        )
    ).first()
    return float(Placement.model_fields["exploration"].default if share is None else share)


def active_policy(
    session: Session, *, tenant_id: int, placement: str, lock: bool
) -> tuple[PolicyRun, SegmentThompson]:
    """The placement's active run (started from the prior, exploring the placement's
    share, when it has none) and its policy; ``lock`` holds the row until commit, so
    concurrent updates queue up.

    A lock waited for while another transaction closed the run finds no row (Postgres
    rechecks ``active`` on the row it waited for, and the statement does not see the run
    that replaced it): the next statement does."""
    prior = SegmentThompson(epsilon=_exploration(session, tenant_id, placement)).fit()
    query = select(PolicyRun).where(
        PolicyRun.tenant_id == tenant_id, PolicyRun.placement == placement, PolicyRun.active
    )
    for _ in range(_CLOSED_MEANWHILE):
        session.execute(
            insert(PolicyRun)
            .values(_new(tenant_id, placement, prior, version=0))
            .on_conflict_do_nothing(
                index_elements=["tenant_id", "placement"],
                index_where=PolicyRun.active,  # type: ignore[arg-type]
            )
        )
        run = session.exec(query.with_for_update() if lock else query).first()
        if run is not None:
            assert run.state is not None
            return run, SegmentThompson.from_dict(run.state)
    raise RuntimeError(f"no active policy run for {placement!r} after {_CLOSED_MEANWHILE} tries")


def save_policy(
    session: Session,
    run: PolicyRun,
    policy: SegmentThompson,
    *,
    snapshot_every_s: float,
    contextual: LinearThompson | None = None,
) -> PolicyRun:
    """Store what ``policy`` (and ``contextual``, else the linear policy the run had)
    learnt; the active run afterwards (a new one after a snapshot)."""
    run.state = _state(policy, contextual, run.state)
    run.version = policy.version_
    session.add(run)
    session.flush()
    started = run.started_at or datetime.now(UTC)
    if datetime.now(UTC) - started < timedelta(seconds=snapshot_every_s):
        return run
    return _close(session, run, policy, contextual)


def _close(
    session: Session, run: PolicyRun, policy: SegmentThompson, contextual: LinearThompson | None
) -> PolicyRun:
    """Freeze ``run`` as a succeeded snapshot and continue in a new active run, one
    version on, from ``policy`` (and ``contextual``, else the linear policy ``run`` had)."""
    assert run.id is not None
    _BOOK.succeed(session, run.id, active=False, progress=1.0)
    policy.version_ += 1
    state = _state(policy, contextual, run.state)
    session.execute(
        insert(PolicyRun).values(_new(run.tenant_id, run.placement, policy, policy.version_, state))
    )
    return active_policy(session, tenant_id=run.tenant_id, placement=run.placement, lock=True)[0]


def explore(session: Session, *, tenant_id: int, placement: str, share: float) -> PolicyRun:
    """The placement now explores ``share``: unless its active run already does, that run
    is closed as a snapshot of what it served and a new one continues with the new share."""
    run, policy = active_policy(session, tenant_id=tenant_id, placement=placement, lock=True)
    if policy.epsilon == share:
        return run
    policy.set_params(epsilon=share)
    assert run.state is not None
    contextual = None
    if CONTEXTUAL_STATE in run.state:
        contextual = contextual_policy(run.state).set_params(epsilon=share)
    return _close(session, run, policy, contextual)
