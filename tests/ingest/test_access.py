"""Who may do what: the scope matrix, revocation, rate limits and tenant isolation."""

from __future__ import annotations

import itertools

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from services.ingest.records.schemas import RECORD_MODELS, RecordKind, example_of
from shared.auth import Scope, revoke_api_key
from shared.db import session_scope
from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of

pytestmark = pytest.mark.integration

EXAMPLES = {kind: example_of(RECORD_MODELS[kind]) for kind in RecordKind}
TABLES = {
    "customers": "customer",
    "products": "product",
    "orders": "orders",
    "events": "event",
    "reviews": "review",
    "transcripts": "transcript",
}


def endpoints() -> list[tuple[str, str, str, set[str]]]:
    """(name, method, path, scopes that may call it) for every endpoint that needs a key."""
    rows = []
    for kind in RecordKind:
        allowed = {"admin", "ingest:write"}
        if kind is RecordKind.TRANSCRIPTS:
            allowed.add("transcripts:write")
        rows.append((f"post-{kind.value}", "POST", f"/v1/{kind.value}", allowed))
        rows.append((f"import-{kind.value}", "POST", f"/v1/import/{kind.value}", allowed))
    rows.append(("erase", "DELETE", "/v1/customers/c-000123", {"admin"}))
    rows.append(("erasure-status", "GET", "/v1/erasures/999999", {"admin"}))
    return rows


def call(client: httpx.Client, method: str, path: str, key: str | None) -> httpx.Response:
    headers = auth(key) if key else {}
    if method == "POST":
        kind = RecordKind(path.rsplit("/", 1)[1])
        body = orjson.dumps(EXAMPLES[kind])
        headers["content-type"] = "application/x-ndjson" if "import" in path else "application/json"
        return client.post(path, content=body, headers=headers)
    return client.request(method, path, headers=headers)


@pytest.mark.parametrize(
    ("scope", "endpoint"),
    list(itertools.product([s.value for s in Scope], endpoints())),
    ids=lambda v: v if isinstance(v, str) else v[0],
)
def test_scope_matrix(
    client: httpx.Client,
    make_key: MakeKey,
    engine: Engine,
    scope: str,
    endpoint: tuple[str, str, str, set[str]],
) -> None:
    _, method, path, allowed = endpoint
    key = make_key(scope)
    response = call(client, method, path, key)
    if scope in allowed:
        expected = 404 if path.startswith("/v1/erasures") else 200
        assert response.status_code == expected, response.text
    else:
        assert response.status_code == 403, response.text
        assert "lacks the scope" in response.json()["detail"]
        if method == "POST":
            kind = path.rsplit("/", 1)[1]
            assert count(engine, TABLES[kind], tenant_of(engine, key)) == 0


@pytest.mark.parametrize("endpoint", endpoints(), ids=lambda e: e[0])
@pytest.mark.parametrize("presented", ["none", "garbage", "wrong-secret"])
def test_requests_without_a_valid_key_are_401(
    client: httpx.Client,
    make_key: MakeKey,
    endpoint: tuple[str, str, str, set[str]],
    presented: str,
) -> None:
    key = {
        "none": None,
        "garbage": "not-a-key",
        "wrong-secret": make_key("admin").rsplit("_", 1)[0] + "_wrong",
    }[presented]
    response = call(client, endpoint[1], endpoint[2], key)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_stops_working_at_once(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("ingest:write")
    assert call(client, "POST", "/v1/products", key).status_code == 200
    with session_scope(engine) as session:
        assert revoke_api_key(session, prefix=key.split("_")[1])
    assert call(client, "POST", "/v1/products", key).status_code == 401


def test_over_the_rate_limit_a_key_gets_429_with_retry_after(
    client: httpx.Client, make_key: MakeKey
) -> None:
    key = make_key("ingest:write", rate_limit_per_minute=5)
    other = make_key("ingest:write", rate_limit_per_minute=5)
    statuses = [call(client, "POST", "/v1/products", key).status_code for _ in range(7)]
    assert statuses.count(200) == 5
    limited = call(client, "POST", "/v1/products", key)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert call(client, "POST", "/v1/products", other).status_code == 200  # per key


def test_tenants_never_see_or_touch_each_others_records(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    shop_a, shop_b = make_key("admin"), make_key("admin")
    order = EXAMPLES[RecordKind.ORDERS]
    assert client.post("/v1/orders", json=order, headers=auth(shop_a)).json()["accepted"] == 1
    # The same ids in another tenant are a different order and a different customer.
    assert client.post("/v1/orders", json=order, headers=auth(shop_b)).json()["accepted"] == 1
    erased = client.delete(f"/v1/customers/{order['customer_id']}", headers=auth(shop_b))
    assert erased.json()["stores"]["postgres"]["rows"]["orders"] == 1
    tenant_a = tenant_of(engine, shop_a)
    assert count(engine, "orders", tenant_a) == 1
    assert count(engine, "customer", tenant_a) == 1
    # Erasure ids are per tenant: A cannot read B's.
    status = client.get(f"/v1/erasures/{erased.json()['erasure_id']}", headers=auth(shop_a))
    assert status.status_code == 404
