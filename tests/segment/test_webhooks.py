"""Webhooks: subscriptions through the real segment API, deliveries by the worker's tick
(`deliver_webhooks`, what beat runs) on real Postgres, to a local receiver.

The receiver listens on 127.0.0.1, an address webhooks may not reach by default: most
tests here use a segment API and ticks with ``webhook_allow_private`` (what an on-premise
install with receivers on its own network sets); the guard's tests use the default."""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from services.segment.settings import SegmentSettings
from services.segment.webhooks.delivery import backoff_s, deliver_webhooks
from services.segment.webhooks.schemas import WebhookCreate
from services.segment.webhooks.service import create_subscription
from services.segment.webhooks.signing import verify
from shared.auth import Scope
from shared.db import session_scope
from shared.settings import Settings
from tests.conftest import MakeKey
from tests.segment.builders import add_history, create_customer, create_run, create_segment
from tests.support.http import auth, tenant_of
from tests.support.servers import start_api
from tests.support.webhook_receiver import Receiver, webhook_receiver

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


ALLOW_PRIVATE = {"SEGMENTA_WEBHOOK_ALLOW_PRIVATE": "true"}


@pytest.fixture(scope="module")
def private_hooks_api(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The segment API with ``webhook_allow_private`` (the shared one keeps the default)."""
    log = tmp_path_factory.mktemp("hooks-api") / "api.log"
    process, base = start_api(env | ALLOW_PRIVATE, log, app="services.segment.main:app")
    yield base
    process.stop()


@pytest.fixture
def segment_client(private_hooks_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=private_hooks_api, timeout=60) as client:
        yield client


@pytest.fixture
def guarded_client(segment_api: str) -> Iterator[httpx.Client]:
    """The segment API with the default settings: private receivers refused."""
    with httpx.Client(base_url=segment_api, timeout=60) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


def tick_settings(settings: Settings, **overrides: Any) -> SegmentSettings:
    values: dict[str, Any] = {
        "database_url": settings.database_url,
        "redis_url": settings.redis_url,
        "environment": "test",
        "secret_key": settings.secret_key,
        "webhook_backoff_base_s": 0.3,
        "webhook_backoff_max_s": 5.0,
        "webhook_max_attempts": 4,
        "webhook_timeout_s": 5.0,
        "webhook_tick_budget_s": 5.0,
        "webhook_allow_private": True,
    } | overrides
    return SegmentSettings(**values)


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    admin: str
    customers: dict[str, int]  # customer_id -> pk


@pytest.fixture
def tenant(engine: Engine, make_key: MakeKey) -> Tenant:
    """An active run with segments s1, s2, s3 and four customers."""
    name = f"hooks-{uuid.uuid4().hex[:12]}"
    admin = make_key("admin", tenant=name)
    tenant_id = tenant_of(engine, admin)
    with session_scope(engine) as session:
        run_id = create_run(session, tenant_id=tenant_id, active=True).id
        assert run_id is not None
        for key in ("s1", "s2", "s3"):
            create_segment(session, tenant_id=tenant_id, run_id=run_id, key=key)
        customers = {}
        for i in range(4):
            customer = create_customer(session, tenant_id=tenant_id, customer_id=f"{name}-c{i}")
            assert customer.id is not None
            customers[customer.customer_id] = customer.id
    return Tenant(tenant_id, name, admin, customers)


def subscribe(
    client: httpx.Client, tenant: Tenant, url: str, segments: list[str]
) -> dict[str, Any]:
    response = client.post(
        "/v1/webhooks", json={"url": url, "segments": segments}, headers=auth(tenant.admin)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def change(
    engine: Engine, tenant: Tenant, customer: int, from_key: str | None, to_key: str | None
) -> None:
    with session_scope(engine) as session:
        add_history(
            session,
            tenant_id=tenant.id,
            customer_pk=list(tenant.customers.values())[customer],
            from_key=from_key,
            to_key=to_key,
        )


def deliveries(
    client: httpx.Client, tenant: Tenant, webhook_id: int, **params: Any
) -> list[dict[str, Any]]:
    response = client.get(
        f"/v1/webhooks/{webhook_id}/deliveries", params=params, headers=auth(tenant.admin)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def run_ticks(engine: Engine, settings: SegmentSettings, until: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out ticking"
        deliver_webhooks(engine, settings)
        time.sleep(0.05)


def test_membership_changes_are_delivered_signed(
    segment_client: httpx.Client,
    engine: Engine,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
) -> None:
    hook = subscribe(segment_client, tenant, receiver.url, ["s1"])
    assert hook["secret"].startswith("whsec_")
    ids = list(tenant.customers)
    change(engine, tenant, 0, None, "s1")  # entered s1
    change(engine, tenant, 1, "s1", "s2")  # left s1
    change(engine, tenant, 2, "s2", "s3")  # not about s1
    change(engine, tenant, 3, "s1", "s1")  # no move

    ticks = tick_settings(settings)
    deliver_webhooks(engine, ticks)
    deliver_webhooks(engine, ticks)  # nothing new: nothing sent twice
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.path == "/hooks/segmenta"
    assert verify(hook["secret"], got.body, got.headers["x-segmenta-signature"])
    assert not verify(hook["secret"], got.body + b" ", got.headers["x-segmenta-signature"])
    body = json.loads(got.body)
    assert body["subscription_id"] == hook["id"]
    assert got.headers["x-segmenta-delivery"] == str(body["delivery_id"])
    assert body["attempt"] == 1
    moves = [(c["customer_id"], c["from_segment"], c["to_segment"]) for c in body["changes"]]
    assert moves == [(ids[0], None, "s1"), (ids[1], "s1", "s2")]

    log = deliveries(segment_client, tenant, hook["id"])
    assert [(d["status"], d["attempts"], d["changes"], d["last_status_code"]) for d in log] == [
        ("delivered", 1, 2, 200)
    ]
    assert log[0]["delivered_at"] is not None
    assert log[0]["next_attempt_at"] is None

    change(engine, tenant, 2, "s3", "s1")  # a later change: a new delivery
    deliver_webhooks(engine, ticks)
    assert len(receiver.received) == 2
    assert [c["customer_id"] for c in json.loads(receiver.received[1].body)["changes"]] == [ids[2]]


def test_failed_deliveries_are_retried_with_backoff(
    segment_client: httpx.Client,
    engine: Engine,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
) -> None:
    receiver.answers = [500, 503]
    hook = subscribe(segment_client, tenant, receiver.url, ["s2"])
    change(engine, tenant, 0, None, "s2")
    ticks = tick_settings(settings)
    run_ticks(engine, ticks, lambda: len(receiver.received) >= 3)
    log = deliveries(segment_client, tenant, hook["id"])
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("delivered", 3, 200)
    ]
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [b["attempt"] for b in bodies] == [1, 2, 3]
    assert len({b["delivery_id"] for b in bodies}) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(receiver.received)]
    # Waits of at least half the doubled base (0.3 s, then 0.6 s), less the time between
    # counting an attempt and sending it; without backoff the ticks come every ~0.05 s.
    assert gaps[0] >= 0.1
    assert gaps[1] >= 0.2


def test_a_delivery_is_dead_lettered_after_the_attempt_limit(
    segment_client: httpx.Client,
    engine: Engine,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
) -> None:
    receiver.default = 500
    hook = subscribe(segment_client, tenant, receiver.url, ["s3"])
    change(engine, tenant, 0, None, "s3")
    ticks = tick_settings(settings, webhook_max_attempts=3, webhook_backoff_base_s=0.1)
    run_ticks(
        engine,
        ticks,
        lambda: [d["status"] for d in deliveries(segment_client, tenant, hook["id"])] == ["dead"],
    )
    for _ in range(5):  # a dead delivery is not tried again
        time.sleep(0.1)
        deliver_webhooks(engine, ticks)
    assert len(receiver.received) == 3
    (dead,) = deliveries(segment_client, tenant, hook["id"], status="dead")
    assert (dead["attempts"], dead["last_status_code"], dead["last_error"]) == (
        3,
        500,
        "answered 500",
    )
    assert deliveries(segment_client, tenant, hook["id"], status="delivered") == []


def test_an_unreachable_receiver_is_an_error_in_the_log(
    segment_client: httpx.Client, engine: Engine, settings: Settings, tenant: Tenant
) -> None:
    with webhook_receiver() as gone:
        url = gone.url  # closed when the block ends: nothing listens there
    hook = subscribe(segment_client, tenant, url, ["s1"])
    change(engine, tenant, 0, None, "s1")
    deliver_webhooks(engine, tick_settings(settings))
    (pending,) = deliveries(segment_client, tenant, hook["id"])
    assert (pending["status"], pending["attempts"], pending["last_status_code"]) == (
        "pending",
        1,
        None,
    )
    assert pending["last_error"].startswith("could not connect")
    assert pending["next_attempt_at"] is not None


def test_backoff_doubles_to_its_cap_with_jitter(settings: Settings) -> None:
    ticks = tick_settings(settings, webhook_backoff_base_s=10, webhook_backoff_max_s=60)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (4, 60), (9, 60)]:
        waits = [backoff_s(attempt, ticks, rng) for _ in range(200)]
        assert ceiling / 2 <= min(waits)
        assert max(waits) <= ceiling
        assert max(waits) - min(waits) > ceiling / 4  # spread: retries do not march together


def test_deleting_a_subscription_stops_its_deliveries(
    segment_client: httpx.Client,
    engine: Engine,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
) -> None:
    hook = subscribe(segment_client, tenant, receiver.url, ["s1"])
    change(engine, tenant, 0, None, "s1")
    gone = segment_client.delete(f"/v1/webhooks/{hook['id']}", headers=auth(tenant.admin))
    assert gone.status_code == 204
    deliver_webhooks(engine, tick_settings(settings))
    assert receiver.received == []
    listed = segment_client.get("/v1/webhooks", headers=auth(tenant.admin)).json()
    assert listed == {"items": []}


def test_listing_never_shows_the_secret(
    segment_client: httpx.Client, tenant: Tenant, receiver: Receiver
) -> None:
    hook = subscribe(segment_client, tenant, receiver.url, ["s1", "s2"])
    listed = segment_client.get("/v1/webhooks", headers=auth(tenant.admin)).json()["items"]
    assert listed == [
        {
            "id": hook["id"],
            "url": receiver.url,
            "segments": ["s1", "s2"],
            "description": None,
            "created_at": hook["created_at"],
        }
    ]
    assert hook["secret"] not in json.dumps(listed)


ENDPOINTS = [
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/webhooks"),
    ("GET", "/v1/webhooks/{id}/deliveries"),
    ("DELETE", "/v1/webhooks/{id}"),
]


@pytest.mark.parametrize(
    ("scope", "endpoint"),
    list(itertools.product([s.value for s in Scope], ENDPOINTS)),
    ids=lambda v: v if isinstance(v, str) else f"{v[0]} {v[1]}",
)
def test_scope_matrix(
    segment_client: httpx.Client,
    tenant: Tenant,
    make_key: MakeKey,
    receiver: Receiver,
    scope: str,
    endpoint: tuple[str, str],
) -> None:
    hook = subscribe(segment_client, tenant, receiver.url, ["s1"])
    method, template = endpoint
    key = make_key(scope, tenant=tenant.name)
    body = {"url": receiver.url, "segments": ["s2"]} if method == "POST" else None
    response = segment_client.request(
        method, template.format(id=hook["id"]), json=body, headers=auth(key)
    )
    if scope == "admin":
        assert response.status_code in {200, 201, 204}, response.text
    else:
        assert response.status_code == 403, response.text
        assert "scope" in response.json()["detail"]


@pytest.mark.parametrize(("method", "template"), ENDPOINTS)
def test_no_key_is_401(segment_client: httpx.Client, method: str, template: str) -> None:
    response = segment_client.request(method, template.format(id=1))
    assert response.status_code == 401


def test_another_tenant_sees_none_of_it(
    segment_client: httpx.Client, tenant: Tenant, make_key: MakeKey, receiver: Receiver
) -> None:
    hook = subscribe(segment_client, tenant, receiver.url, ["s1"])
    other = make_key("admin")
    assert segment_client.get("/v1/webhooks", headers=auth(other)).json() == {"items": []}
    for method, path in (
        ("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
        ("DELETE", f"/v1/webhooks/{hook['id']}"),
    ):
        response = segment_client.request(method, path, headers=auth(other))
        assert response.status_code == 404, path
        assert response.json()["errors"][0]["field"] == "webhook_id"
    # Still there for its owner.
    assert len(segment_client.get("/v1/webhooks", headers=auth(tenant.admin)).json()["items"]) == 1
    # Another tenant cannot subscribe to segments it does not have.
    refused = segment_client.post(
        "/v1/webhooks", json={"url": receiver.url, "segments": ["s1"]}, headers=auth(other)
    )
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"segments": ["s1"]}, "url"),
        ({"url": "ftp://example.org/x", "segments": ["s1"]}, "url"),
        ({"url": "http://user:pw@127.0.0.1/x", "segments": ["s1"]}, "url"),
        ({"url": "not a url", "segments": ["s1"]}, "url"),
        ({"url": "http://127.0.0.1/" + "x" * 2048, "segments": ["s1"]}, "url"),
        ({"url": "http://127.0.0.1/x"}, "segments"),
        ({"url": "http://127.0.0.1/x", "segments": []}, "segments"),
        ({"url": "http://127.0.0.1/x", "segments": ["s1", "s1"]}, "segments"),
        ({"url": "http://127.0.0.1/x", "segments": ["x" * 33]}, "segments"),
        ({"url": "http://127.0.0.1/x", "segments": ["nope"]}, "segments"),
        ({"url": "http://127.0.0.1/x", "segments": "s1"}, "segments"),
        ({"url": "http://127.0.0.1/x", "segments": ["s1"], "secret": "mine"}, "secret"),
        ({"url": "http://127.0.0.1/x", "segments": ["s1"], "tenant_id": 1}, "tenant_id"),
    ],
)
def test_malformed_subscriptions_are_refused(
    segment_client: httpx.Client, engine: Engine, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    response = segment_client.post("/v1/webhooks", json=body, headers=auth(tenant.admin))
    assert response.status_code == 422, response.text
    assert any(e["field"].startswith(field) for e in response.json()["errors"]), response.text
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM webhook_subscription WHERE tenant_id = :t"), {"t": tenant.id}
        ).scalar_one()
    assert stored == 0


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/v1/webhooks/0/deliveries", 422, "webhook_id"),
        ("/v1/webhooks/abc/deliveries", 422, "webhook_id"),
        ("/v1/webhooks/99999999999/deliveries", 404, "webhook_id"),
        ("/v1/webhooks/{id}/deliveries?status=lost", 422, "status"),
        ("/v1/webhooks/{id}/deliveries?limit=0", 422, "limit"),
        ("/v1/webhooks/{id}/deliveries?before=0", 422, "before"),
    ],
)
def test_malformed_log_reads(
    segment_client: httpx.Client,
    tenant: Tenant,
    receiver: Receiver,
    path: str,
    status: int,
    field: str,
) -> None:
    hook = subscribe(segment_client, tenant, receiver.url, ["s1"])
    response = segment_client.get(path.format(id=hook["id"]), headers=auth(tenant.admin))
    assert response.status_code == status, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


def stored_subscriptions(engine: Engine, tenant: Tenant) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM webhook_subscription WHERE tenant_id = :t"),
                {"t": tenant.id},
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/hooks", "127.0.0.1 (loopback)"),
        ("http://10.1.2.3/hooks", "10.1.2.3 (private)"),
        ("http://192.168.0.10/hooks", "192.168.0.10 (private)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 (link-local)"),
        ("http://[::1]:9000/hooks", "::1 (loopback)"),
        ("https://localhost/hooks", "(loopback)"),
        ("http://0.0.0.0/hooks", "0.0.0.0 (unspecified)"),
        ("http://224.0.0.1/hooks", "224.0.0.1 (multicast)"),
        ("http://[::ffff:127.0.0.1]/hooks", "(loopback)"),
        ("http://2130706433/hooks", "127.0.0.1 (loopback)"),  # 127.0.0.1 as one number
        ("http://no-such-host.invalid/hooks", "does not resolve"),
    ],
)
def test_a_url_that_is_not_public_is_refused_at_subscription(
    guarded_client: httpx.Client, engine: Engine, tenant: Tenant, url: str, why: str
) -> None:
    response = guarded_client.post(
        "/v1/webhooks", json={"url": url, "segments": ["s1"]}, headers=auth(tenant.admin)
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "url"
    assert why in error["message"]
    assert stored_subscriptions(engine, tenant) == 0


def test_a_public_address_is_accepted_by_default(
    guarded_client: httpx.Client, engine: Engine, tenant: Tenant
) -> None:
    url = "https://93.184.215.14/hooks"  # a literal: no DNS needed
    response = guarded_client.post(
        "/v1/webhooks", json={"url": url, "segments": ["s1"]}, headers=auth(tenant.admin)
    )
    assert response.status_code == 201, response.text
    assert response.json()["url"] == url


def subscribe_directly(engine: Engine, tenant: Tenant, url: str, segments: list[str]) -> int:
    """A subscription stored without the API's check: one whose name pointed elsewhere
    when it was made."""
    with session_scope(engine) as session:
        made = create_subscription(
            session,
            tenant_id=tenant.id,
            body=WebhookCreate(url=url, segments=segments),
            created_by="test",
        )
        assert made.id is not None
        return made.id


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_url_resolving_to_a_private_address_at_delivery_is_not_sent(
    segment_client: httpx.Client,
    engine: Engine,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    host: str,
) -> None:
    url = receiver.url.replace("127.0.0.1", host)
    hook_id = subscribe_directly(engine, tenant, url, ["s1"])
    change(engine, tenant, 0, None, "s1")
    deliver_webhooks(engine, tick_settings(settings, webhook_allow_private=False))
    assert receiver.received == []
    (pending,) = deliveries(segment_client, tenant, hook_id)
    assert (pending["status"], pending["attempts"]) == ("pending", 1)
    assert pending["last_error"].startswith("not sent: the URL must point to a public address")
    assert pending["last_error"].endswith("(loopback)")


def test_a_delivery_connects_to_the_checked_address_and_names_the_host(
    segment_client: httpx.Client,
    engine: Engine,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost")
    hook = subscribe(segment_client, tenant, url, ["s1"])
    change(engine, tenant, 0, None, "s1")
    run_ticks(engine, tick_settings(settings), lambda: receiver.received)
    (received,) = receiver.received
    assert received.headers["host"] == url.split("/")[2]  # localhost:<port>
    assert received.path == "/hooks/segmenta"
    assert deliveries(segment_client, tenant, hook["id"])[0]["status"] == "delivered"


def test_a_redirect_is_not_followed(
    segment_client: httpx.Client,
    engine: Engine,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
) -> None:
    with webhook_receiver() as inside:  # stands for an address the sender must not reach
        receiver.default = 307
        receiver.headers = {"Location": inside.url}
        hook = subscribe(segment_client, tenant, receiver.url, ["s1"])
        change(engine, tenant, 0, None, "s1")
        deliver_webhooks(engine, tick_settings(settings))
        assert len(receiver.received) == 1
        assert inside.received == []
    (pending,) = deliveries(segment_client, tenant, hook["id"])
    assert (pending["status"], pending["last_status_code"]) == ("pending", 307)
    assert pending["last_error"] == "answered 307"
