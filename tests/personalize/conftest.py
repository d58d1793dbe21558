"""The personalize service as real processes: API, worker, beat and the outbox relay."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.personalize.cache import CachedOffer
from services.personalize.serving.decide import Choice, Shown, Visitor
from services.personalize.serving.log import decision_record
from tests.conftest import MakeKey
from tests.support.http import auth
from tests.support.servers import Process, start_api, start_worker


def start_beat_and_relay(env: dict[str, str], logs: Path, *, worker: bool) -> list[Process]:
    """personalize's beat and the outbox relay (and its worker, if ``worker``)."""
    beat = Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "services.personalize.worker",
            "beat",
            "--schedule",
            str(logs / "beat-schedule"),
            "--loglevel",
            "WARNING",
        ],
        env,
        logs / "beat.log",
    )
    relay = Process([sys.executable, "-m", "shared.relay"], env, logs / "relay.log")
    started = [beat, relay]
    if worker:
        log = logs / "w.log"
        started.insert(0, start_worker("services.personalize.worker", "personalize", env, log))
    return started


@pytest.fixture(scope="module")
def personalize_api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("personalize")
    fast = {**env, "SEGMENTA_PERSONALIZE_SNAPSHOT_TTL_S": "0.2"}
    workers = start_beat_and_relay(fast, logs, worker=True)
    try:
        process, base = start_api(fast, logs / "api.log", app="services.personalize.main:app")
    except BaseException:  # an API that did not start leaves no worker behind
        for p in workers:
            p.stop()
        raise
    yield base
    for p in (process, *workers):
        p.stop()


@pytest.fixture
def pclient(personalize_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=personalize_api, timeout=30) as client:
        yield client


@dataclass(frozen=True)
class Shop:
    admin: str
    storefront: str
    client: httpx.Client

    def create_offer(self, offer_id: str, **fields: Any) -> dict[str, Any]:
        body = {
            "offer_id": offer_id,
            "name": f"Offer {offer_id}",
            "kind": "discount",
            "placements": ["home"],
            **fields,
        }
        response = self.client.post("/v1/offers", json=body, headers=auth(self.admin))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def configure(self, placement: str = "home", **settings: Any) -> dict[str, Any]:
        """Set the placement's settings. Call it before creating the placement's offers:
        the snapshot that first shows all of them was read after these settings, so once
        ``serving`` returns they are served too (set after the offers, they could reach the
        snapshot a rebuild later than the offers do)."""
        response = self.client.put(
            f"/v1/placements/{placement}", json=settings, headers=auth(self.admin)
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def offers(self, customer_id: str, **params: Any) -> httpx.Response:
        return self.client.get(
            f"/v1/offers/{customer_id}", params=params, headers=auth(self.storefront)
        )

    def serving(self, offer_ids: set[str], placement: str = "home") -> None:
        """Wait until the placement's snapshot offers exactly ``offer_ids``."""

        def ready() -> bool:
            # (a probe that falls in the holdout sees only the default: the next one won't)
            answer = self.offers(f"probe-{uuid.uuid4().hex[:6]}", placement=placement, n=10)
            shown = {o["offer_id"] for o in answer.json().get("offers", [])}
            return answer.status_code == 200 and shown == offer_ids

        wait(ready, 30, f"{placement} serving {sorted(offer_ids)}")

    def feedback(self, events: list[dict[str, Any]] | dict[str, Any]) -> httpx.Response:
        return self.client.post("/v1/feedback", json=events, headers=auth(self.storefront))


def logged_decision(tenant_id: int, offer_id: str, decision_id: str | None = None) -> bytes:
    """A decision record as the API writes it into the stream (`decision_record`): a
    personalised bandit answer showing ``offer_id`` to an unknown visitor."""
    offer = CachedOffer(offer_id=offer_id, name=offer_id, kind="discount")
    choice = Choice(
        "bandit", None, (Shown(offer, 0, 1.0),), True, eligible=(offer_id,), algorithm="thompson"
    )
    return decision_record(
        decision_id=decision_id or uuid.uuid4().hex,
        tenant_id=tenant_id,
        placement="home",
        visitor=Visitor(uuid.uuid4().hex, None, True, None),
        choice=choice,
        policy_version=0,
        created_at=datetime.now(UTC),
    )


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def shop(make_key: MakeKey, pclient: httpx.Client) -> Shop:
    tenant = f"shop-{uuid.uuid4().hex[:12]}"
    return Shop(
        admin=make_key("admin", tenant=tenant),
        storefront=make_key("offers:read", "feedback:write", tenant=tenant),
        client=pclient,
    )
