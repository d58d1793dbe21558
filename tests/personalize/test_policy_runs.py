"""A placement's policy runs record what they served with: its exploration share is the
run's ``epsilon``, and a new share closes the run as a snapshot and continues in another."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, text

from services.personalize.policies import active_policy, explore
from shared.db import session_scope
from tests.personalize.conftest import Shop, wait
from tests.support.http import tenant_of

pytestmark = [pytest.mark.e2e]


def _runs(engine: Engine, tenant_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT version, status, active, params, state FROM policy_run "
                "WHERE tenant_id = :t AND placement = 'home' ORDER BY id"
            ),
            {"t": tenant_id},
        ).mappings()
        return [dict(row) for row in rows]


def _shows(run: dict[str, Any]) -> dict[tuple[str, str], float]:
    counts = run["state"]["counts"]
    return {(s, o): sum(c) for s, offers in counts.items() for o, c in offers.items()}


def test_a_new_exploration_share_closes_the_run_that_served_the_old_one(
    shop: Shop, engine: Engine
) -> None:
    shop.create_offer("a")
    shop.create_offer("b")
    shop.serving({"a", "b"})
    tenant_id = tenant_of(engine, shop.admin)
    # The probes' decisions are learnt as shows: the run has counts to carry over.
    wait(lambda: bool(_shows(_runs(engine, tenant_id)[-1])), 30, "the first shows learnt")
    [first] = _runs(engine, tenant_id)
    assert first["params"]["epsilon"] == 0.05  # a new placement's share

    shop.configure(exploration=0.2)
    closed, active = _runs(engine, tenant_id)
    assert (closed["status"], closed["active"], closed["params"]["epsilon"]) == (
        "succeeded",
        False,
        0.05,
    )
    assert (active["active"], active["params"]["epsilon"]) == (True, 0.2)
    assert active["state"]["params"]["epsilon"] == 0.2
    assert active["version"] > closed["version"]
    carried = _shows(active)
    assert all(carried.get(key, 0) >= n for key, n in _shows(closed).items())

    # Other settings, or the same share again, leave the run as it is.
    shop.configure(exploration=0.2, holdout_share=0.1)
    assert [r["active"] for r in _runs(engine, tenant_id)] == [False, True]


def test_a_learner_waiting_on_a_run_closed_meanwhile_continues_in_the_new_one(
    shop: Shop, engine: Engine
) -> None:
    """The API closes a run (a new share) while the worker waits to learn into it: the
    worker's batch goes to the new run instead of failing."""
    shop.create_offer("a")
    shop.serving({"a"})
    tenant_id = tenant_of(engine, shop.admin)
    with session_scope(engine) as closer:
        active_policy(closer, tenant_id=tenant_id, placement="home", lock=True)
        with ThreadPoolExecutor(1) as pool:
            learner = pool.submit(_lock_active, engine, tenant_id)
            time.sleep(0.5)
            assert not learner.done()  # waiting for the run's row
            explore(closer, tenant_id=tenant_id, placement="home", share=0.3)
            closer.commit()
            epsilon, active = learner.result(timeout=10)
    assert (epsilon, active) == (0.3, True)


def _lock_active(engine: Engine, tenant_id: int) -> tuple[float, bool]:
    with session_scope(engine) as session:
        run, policy = active_policy(session, tenant_id=tenant_id, placement="home", lock=True)
        return policy.epsilon, run.active
