"""Writing memberships: who is where since when, and every move in the history.

Each behaviour is checked on both ways the assignments reach Postgres: as array
parameters (a refresh of a few customers) and by COPY into a temporary table (an
activation of a whole tenant).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from services.segment.assignment import memberships
from services.segment.assignment.memberships import write_memberships
from shared.models.tenancy import Tenant
from tests.segment.builders import create_customer, create_run

pytestmark = pytest.mark.integration


@pytest.fixture(params=["arrays", "copy"])
def session(
    request: pytest.FixtureRequest, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Session]:
    """A session rolled back after the test, writing through the path named by the param."""
    if request.param == "copy":
        monkeypatch.setattr(memberships, "COPY_FROM", 1)
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection) as session:
            yield session
        transaction.rollback()


def _shop(session: Session, customers: int) -> tuple[int, list[int]]:
    tenant = Tenant(name=f"shop-{uuid.uuid4().hex[:10]}")
    session.add(tenant)
    session.flush()
    assert tenant.id is not None
    pks = [create_customer(session, tenant_id=tenant.id).id for _ in range(customers)]
    return tenant.id, [int(pk) for pk in pks if pk is not None]


def _run(session: Session, tenant: int) -> int:
    run_id = create_run(session, tenant_id=tenant).id
    assert run_id is not None
    return run_id


def _members(session: Session, tenant: int) -> dict[int, dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT customer_pk, run_id, segment_key, since, reason FROM segment_membership"
            " WHERE tenant_id = :t"
        ),
        {"t": tenant},
    ).mappings()
    return {row["customer_pk"]: dict(row) for row in rows}


def _history(session: Session, tenant: int) -> list[tuple[int, str | None, str, Any]]:
    rows = session.execute(
        text(
            "SELECT customer_pk, from_key, to_key, reason FROM membership_history"
            " WHERE tenant_id = :t ORDER BY id"
        ),
        {"t": tenant},
    )
    return [tuple(row) for row in rows]


def test_first_assignment_enters_everyone_with_the_shared_reason(session: Session) -> None:
    tenant, pks = _shop(session, 6)
    run = _run(session, tenant)
    keys = ["s1", "s2", "s1", "s3", "s2", "s1"]

    moved = write_memberships(
        session,
        tenant_id=tenant,
        run_id=run,
        pks=np.asarray(pks),
        keys=keys,
        reasons={"trigger": "activated", "run_id": run},
    )

    assert sorted(moved) == sorted(pks)
    members = _members(session, tenant)
    assert {pk: m["segment_key"] for pk, m in members.items()} == dict(zip(pks, keys, strict=True))
    assert all(m["reason"] == {"trigger": "activated", "run_id": run} for m in members.values())
    assert sorted(_history(session, tenant)) == sorted(
        (pk, None, key, {"trigger": "activated", "run_id": run})
        for pk, key in zip(pks, keys, strict=True)
    )


def test_a_new_run_moves_only_those_who_change(session: Session) -> None:
    tenant, pks = _shop(session, 5)
    first, second = _run(session, tenant), _run(session, tenant)
    before = ["a", "a", "b", "b", "c"]
    write_memberships(
        session,
        tenant_id=tenant,
        run_id=first,
        pks=pks,
        keys=before,
        reasons={"n": 1},
    )
    entered = _members(session, tenant)
    session.execute(text("UPDATE segment_membership SET since = since - interval '1 day'"))
    session.execute(text("DELETE FROM membership_history WHERE tenant_id = :t"), {"t": tenant})

    after = ["a", "b", "b", "c", "c"]
    reasons = [{"why": f"moved {i}"} for i in range(5)]
    moved = write_memberships(
        session,
        tenant_id=tenant,
        run_id=second,
        pks=pks,
        keys=after,
        reasons=reasons,
    )

    assert sorted(moved) == [pks[1], pks[3]]
    assert sorted(_history(session, tenant)) == sorted(
        [(pks[1], "a", "b", {"why": "moved 1"}), (pks[3], "b", "c", {"why": "moved 3"})]
    )
    members = _members(session, tenant)
    assert all(m["run_id"] == second for m in members.values())  # every row: the new run
    for i, pk in enumerate(pks):
        stayed = before[i] == after[i]
        # A customer who stays keeps when and why they entered; a mover starts anew.
        assert (members[pk]["since"] < entered[pk]["since"]) is stayed
        assert members[pk]["reason"] == ({"n": 1} if stayed else reasons[i])
