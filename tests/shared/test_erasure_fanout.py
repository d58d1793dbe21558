"""Erasure across processes: a request waits for every expected store, wherever it lives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis
from sqlalchemy import Engine

from shared.erasure import ErasureStore, erasure_worker
from shared.reliable import WorkerEngine
from tests.conftest import MakeKey
from tests.support.erasure import erasing_workers, erasure, wait_for_erasure
from tests.support.fake_store import FAKE_STORE, fake_key
from tests.support.http import auth, tenant_of
from tests.support.servers import Process, start_api, start_worker
from tests.support.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
WHO = "c-fanout-1"


@pytest.fixture(scope="module")
def fake_api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ingest API in a process that expects the fake store as well."""
    log = tmp_path_factory.mktemp("fake-api") / "api.log"
    process, base = start_api(env, log, app="tests.support.fake_store_api:app")
    yield base
    process.stop()


@pytest.fixture(scope="module")
def workers(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Process]]:
    with erasing_workers(env, tmp_path_factory.mktemp("erasure")) as processes:
        yield processes


def test_a_request_waits_for_a_store_of_another_process(
    fake_api: str,
    workers: list[Process],
    make_key: MakeKey,
    engine: Engine,
    redis_url: str,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    key = make_key("admin")
    with httpx.Client(base_url=fake_api, timeout=60) as client:
        customer = {"customer_id": WHO, "email": "fanout@example.org"}
        assert client.post("/v1/customers", json=customer, headers=auth(key)).status_code < 300
        tenant = tenant_of(engine, key)
        with engine.connect() as conn:
            pk = conn.exec_driver_sql(
                "SELECT id FROM customer WHERE customer_id = %s", (WHO,)
            ).scalar_one()
        with Redis.from_url(redis_url) as redis:
            redis.set(fake_key(tenant, pk), "cached")

        erasure_id = client.delete(f"/v1/customers/{WHO}", headers=auth(key)).json()["erasure_id"]
        others = (
            "postgres",
            "segment-artifacts",
            "segment-webhooks",
            "personalize-cache",
            "personalize-log",
        )
        wait_until(
            lambda: all(
                erasure(client, key, erasure_id)["stores"][s]["status"] == "erased" for s in others
            ),
            90,
            "the real stores to report",
        )
        time.sleep(2)  # time enough for anything that would wrongly complete it
        waiting = erasure(client, key, erasure_id)
        assert (waiting["status"], waiting["completed_at"]) == ("pending", None)
        assert waiting["stores"][FAKE_STORE] == {
            "service": "ingest",
            "status": "pending",
            "rows": {},
            "reported_at": None,
        }

        fake = start_worker("tests.support.fake_store_worker", "ingest", env, tmp_path / "fake.log")
        try:
            done = wait_for_erasure(client, key, erasure_id, [*workers, fake])
        finally:
            fake.stop()
    assert done["completed_at"] is not None
    assert (done["stores"][FAKE_STORE]["status"], done["stores"][FAKE_STORE]["rows"]) == (
        "erased",
        {"fake_keys": 1},
    )
    assert set(done["stores"]) == {*others, FAKE_STORE}
    with Redis.from_url(redis_url) as redis:
        assert redis.exists(fake_key(tenant, pk)) == 0


def test_a_worker_must_erase_exactly_the_stores_declared_for_its_service() -> None:
    def erase(*_: object) -> dict[str, int]:
        return {}

    engine = WorkerEngine(lambda: pytest.fail("never connects"))
    with pytest.raises(ValueError, match="declared"):
        erasure_worker(
            "segment", [ErasureStore("undeclared", erase)], engine=engine, max_attempts=1
        )
