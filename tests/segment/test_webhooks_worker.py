"""Webhooks end to end: the segment worker and beat as real processes deliver to a local
receiver, and an erasure through the ingest API takes the customer out of pending
deliveries."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.builders import add_history, create_customer, create_run, create_segment
from tests.support.erasure import erasure
from tests.support.http import auth, tenant_of
from tests.support.servers import Process, start_api
from tests.support.stack import ServiceStack, wait_until
from tests.support.webhook_receiver import Receiver, webhook_receiver

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TICK_ENV = {
    "SEGMENTA_WEBHOOK_EVERY_S": "0.5",
    "SEGMENTA_WEBHOOK_BACKOFF_BASE_S": "0.5",
    "SEGMENTA_WEBHOOK_BACKOFF_MAX_S": "1",
    "SEGMENTA_WEBHOOK_MAX_ATTEMPTS": "100",
    "SEGMENTA_SEGMENT_RETRAIN_EVERY_S": "0",
    # The receiver listens on 127.0.0.1, refused by default.
    "SEGMENTA_WEBHOOK_ALLOW_PRIVATE": "true",
}


@pytest.fixture(scope="module")
def private_hooks_api(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The segment API with ``webhook_allow_private``, as the worker below (the shared
    one keeps the default, which refuses the receiver's address)."""
    log = tmp_path_factory.mktemp("webhook-api") / "api.log"
    process, base = start_api(env | TICK_ENV, log, app="services.segment.main:app")
    yield base
    process.stop()


@pytest.fixture
def segment_client(private_hooks_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=private_hooks_api, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def segment_worker(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, private_hooks_api: str
) -> Iterator[ServiceStack]:
    """The outbox relay, the segment worker, and beat sending the delivery tick (started
    after the API: starting all at once can take the API past its start-up limit)."""
    logs = tmp_path_factory.mktemp("webhook-stack")
    stack_env = env | TICK_ENV
    stack = ServiceStack("segment", stack_env, logs)
    beat = Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "services.segment.worker",
            "beat",
            "--schedule",
            str(logs / "beat-schedule"),
            "--loglevel",
            "INFO",
        ],
        stack_env,
        logs / "beat.log",
    )
    yield stack
    beat.stop()
    stack.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


def changes_of(receiver: Receiver) -> list[list[str]]:
    return [[c["customer_id"] for c in json.loads(r.body)["changes"]] for r in receiver.received]


def test_worker_delivers_and_erasure_empties_pending_deliveries(
    segment_worker: ServiceStack,
    segment_client: httpx.Client,
    client: httpx.Client,
    engine: Engine,
    make_key: MakeKey,
    receiver: Receiver,
) -> None:
    tenant = f"hooks-e2e-{uuid.uuid4().hex[:12]}"
    admin = make_key("admin", tenant=tenant)
    tenant_id = tenant_of(engine, admin)
    gone, kept = f"{tenant}-gone", f"{tenant}-kept"
    with session_scope(engine) as session:
        run_id = create_run(session, tenant_id=tenant_id, active=True).id
        assert run_id is not None
        for key in ("s1", "s2"):
            create_segment(session, tenant_id=tenant_id, run_id=run_id, key=key)
        pks: dict[str, int] = {}
        for customer_id in (gone, kept):
            pk = create_customer(session, tenant_id=tenant_id, customer_id=customer_id).id
            assert pk is not None
            pks[customer_id] = pk
    receiver.default = 503  # down: deliveries stay pending
    hooks: dict[str, Any] = {}
    for key in ("s1", "s2"):
        response = segment_client.post(
            "/v1/webhooks", json={"url": receiver.url, "segments": [key]}, headers=auth(admin)
        )
        assert response.status_code == 201, response.text
        hooks[key] = response.json()
    with session_scope(engine) as session:
        for customer in (gone, kept):
            add_history(session, tenant_id=tenant_id, customer_pk=pks[customer], to_key="s1")
        add_history(session, tenant_id=tenant_id, customer_pk=pks[gone], from_key="s1", to_key="s2")

    # Both subscriptions' deliveries are tried, and fail.
    wanted = {frozenset([gone]), frozenset([gone, kept])}
    try:
        wait_until(
            lambda: wanted <= {frozenset(ids) for ids in changes_of(receiver)},
            240,  # the worker and beat start first (slow on a busy machine)
            "both deliveries to be tried",
        )
    except AssertionError as exc:
        logs = Path(segment_worker.logs)
        tails = [(logs / name).read_text(errors="replace")[-3000:] for name in ("beat.log",)]
        raise AssertionError(
            f"{exc}: {changes_of(receiver)}\n{segment_worker.worker_output()[-3000:]}\n{tails}"
        ) from None

    erasure_id = client.delete(f"/v1/customers/{gone}", headers=auth(admin)).json()["erasure_id"]
    wait_until(
        lambda: (
            erasure(client, admin, erasure_id)["stores"]["segment-webhooks"]["status"] == "erased"
        ),
        60,
        "segment to erase its webhook store",
    )
    report = erasure(client, admin, erasure_id)["stores"]["segment-webhooks"]
    # The customer's items went with the customer row (the cascade); the s2 delivery they
    # left empty is dropped by this erasure or, when it got there first, by a delivery tick
    # that claimed it (either way nothing of it is sent: checked below).
    assert report["rows"]["webhook_delivery_item"] == 0
    assert report["rows"]["webhook_delivery"] in (0, 1)
    tried = len(receiver.received)

    receiver.default = 200  # back up
    wait_until(
        lambda: (
            [d["status"] for d in _log(segment_client, admin, hooks["s1"]["id"])] == ["delivered"]
        ),
        60,
        "the s1 delivery to go through",
    )
    after = changes_of(receiver)[tried:]
    assert after
    assert all(ids == [kept] for ids in after)
    assert _log(segment_client, admin, hooks["s2"]["id"]) == []  # nothing left to send
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM webhook_delivery_item WHERE customer_pk = :pk"),
            {"pk": pks[gone]},
        ).scalar_one()
    assert left == 0


def _log(client: httpx.Client, key: str, webhook_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(
        f"/v1/webhooks/{webhook_id}/deliveries", headers=auth(key)
    ).json()["items"]
    return items


def test_beat_schedules_the_delivery_tick(segment_worker: ServiceStack) -> None:
    logs = Path(segment_worker.logs)
    wait_until(
        lambda: "segment.deliver_webhooks" in (logs / "beat.log").read_text(errors="replace"),
        240,
        "beat to send the tick",
    )
