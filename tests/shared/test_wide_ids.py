"""Ids are 64-bit everywhere they are stored, and a failing statement logs no parameters.

``outbox.subject_id`` and ``dead_letter.subject_id`` were 32-bit columns holding 64-bit
ids (customer, review and run pks): past 2^31 the enqueue failed and took the caller's
transaction, and the accepted records with it, down. The traceback of such a failure
printed the statement's parameters, customer ids included, into the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from shared.contracts import SEGMENT_REFRESH_CUSTOMERS
from shared.db import session_scope
from shared.outbox import enqueue
from shared.reliable import ReliableRunner, Subject
from tests.conftest import MakeKey
from tests.support.http import tenant_of

pytestmark = pytest.mark.integration
BIG = 2**40 + 7  # past both 2^31 and 2^32


def enqueue_big(engine: Engine, tenant_id: int) -> int:
    with session_scope(engine) as session:
        enqueue(
            session,
            tenant_id=tenant_id,
            task_name=SEGMENT_REFRESH_CUSTOMERS,
            subject_ids=[BIG],
        )
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT id FROM outbox WHERE tenant_id = :t AND subject_id = :s"),
                {"t": tenant_id, "s": BIG},
            ).scalar_one()
        )


def test_a_64_bit_subject_is_enqueued_and_handed_to_its_task(
    engine: Engine, make_key: MakeKey
) -> None:
    tenant_id = tenant_of(engine, make_key())
    outbox_id = enqueue_big(engine, tenant_id)
    seen: list[int] = []

    def handler(session: Session, subjects: Sequence[Subject]) -> None:
        seen.extend(s.subject_id for s in subjects)

    ReliableRunner(engine, handler, max_attempts=3).run([outbox_id])
    assert seen == [BIG]


def test_a_64_bit_subject_is_dead_lettered_with_its_id(engine: Engine, make_key: MakeKey) -> None:
    tenant_id = tenant_of(engine, make_key())
    outbox_id = enqueue_big(engine, tenant_id)

    def handler(session: Session, subjects: Sequence[Subject]) -> None:
        raise AssertionError("never runs: no attempt is left")

    ReliableRunner(engine, handler, max_attempts=0).run([outbox_id])
    with engine.connect() as conn:
        dead = conn.execute(
            text("SELECT subject_id FROM dead_letter WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar_one()
    assert dead == BIG


def test_a_failing_statement_logs_no_parameter_values(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    canary = "canary-4d1f@example.com"
    log = logging.getLogger("tests.failing_statement")
    with caplog.at_level(logging.DEBUG):
        try:
            with session_scope(engine) as session:
                # Out of range: Postgres's own message does not echo the value.
                session.execute(
                    text("SELECT CAST(:n AS integer), CAST(:who AS text)"),
                    {"n": 2**40, "who": canary},
                )
        except DBAPIError as exc:
            log.exception("statement failed")
            described = str(exc)
        else:
            pytest.fail("the statement did not fail")
    assert "out of range" in described
    assert canary not in described
    assert str(2**40) not in described
    assert caplog.records, "nothing was logged"
    assert canary not in caplog.text
    assert str(2**40) not in caplog.text
