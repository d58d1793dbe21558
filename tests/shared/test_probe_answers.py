"""Answers a hostile probe checked on every API: the key is checked before the body is
read, a 500 says it closes the connection, and the OpenAPI documents say what the
validators enforce, with the project's error body."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from shared.web.app import platform_app
from tests.conftest import MakeKey
from tests.shared.conftest import PlatformApi
from tests.support.http import auth
from tests.support.servers import free_port

pytestmark = pytest.mark.e2e

APIS = ("ingest", "segment", "nlp", "personalize")
MALFORMED = b'{"texts": ["unterminated'


@pytest.mark.parametrize("name", APIS)
def test_malformed_json_without_a_valid_key_is_refused_for_the_key(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey, name: str
) -> None:
    api = platform_apis[name]
    headers = {"Content-Type": "application/json"}
    url = f"{api.base}{api.post_path}"
    without = httpx.post(url, content=MALFORMED, headers=headers, timeout=30)
    assert without.status_code == 401, without.text
    assert without.json()["errors"][0]["field"] == "Authorization"
    unknown = "sgm_0123456789ab_" + "x" * 43
    wrong = httpx.post(url, content=MALFORMED, headers={**headers, **auth(unknown)}, timeout=30)
    assert wrong.status_code == 401, wrong.text
    # A valid key learns what is wrong with its body.
    key = make_key(api.scope, rate_limit_per_minute=1_000_000)
    valid = httpx.post(url, content=MALFORMED, headers={**headers, **auth(key)}, timeout=30)
    assert valid.status_code in (400, 422), valid.text
    assert valid.json()["errors"], valid.text


def _refs(document: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation.get("responses", {}).items():
                yield path, method, status, answer


@pytest.mark.parametrize("name", APIS)
def test_the_openapi_document_shows_the_projects_422_body(
    platform_apis: dict[str, PlatformApi], name: str
) -> None:
    document = httpx.get(f"{platform_apis[name].base}/openapi.json", timeout=30).json()
    assert "HTTPValidationError" not in json.dumps(document)
    documented = 0
    for path, method, status, answer in _refs(document):
        if status == "422":
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, method)
            documented += 1
    assert documented > 0
    error = document["components"]["schemas"]["ErrorResponse"]
    assert set(error["properties"]) == {"detail", "errors"}


def test_the_ingest_document_says_what_its_validators_enforce(
    platform_apis: dict[str, PlatformApi],
) -> None:
    document = httpx.get(f"{platform_apis['ingest'].base}/openapi.json", timeout=30).json()
    schemas = document["components"]["schemas"]
    customer = schemas["CustomerIn"]["properties"]
    assert customer["customer_id"]["pattern"] == "^[^\\u0000]*$"
    email = customer["email"]["anyOf"][0]
    assert "@" in email["pattern"]
    signup = customer["signup_at"]["anyOf"][0]
    assert signup["formatMinimum"].startswith("1900-")
    assert signup["formatMaximum"].startswith("2200-")
    review = schemas["ReviewIn"]["properties"]
    assert review["text"]["pattern"] == "^[^\\u0000]*$"


@pytest.fixture
def failing_server() -> Iterator[str]:
    """A platform app with one route that fails, under a real uvicorn server."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = platform_app(title="failing", description="a route with a bug", lifespan=lifespan)

    @app.get("/bug")
    async def read_bug() -> dict[str, str]:
        raise RuntimeError("a bug")

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_a_500_says_that_the_connection_closes(failing_server: str) -> None:
    with httpx.Client(base_url=failing_server, timeout=10) as client:
        answer = client.get("/bug")
        assert answer.status_code == 500
        assert answer.headers["connection"] == "close"
        assert answer.json() == {"detail": "internal error", "errors": []}
        # The client knew not to reuse the connection: the next request simply works.
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("name", APIS)
def test_a_body_that_is_not_utf8_is_refused_for_the_key_then_named(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey, name: str
) -> None:
    api = platform_apis[name]
    url = f"{api.base}{api.post_path}"
    headers = {"Content-Type": "application/json"}
    body = b"\xff\xfe\xfa{"
    assert httpx.post(url, content=body, headers=headers, timeout=30).status_code == 401
    key = make_key(api.scope, rate_limit_per_minute=1_000_000)
    answer = httpx.post(url, content=body, headers={**headers, **auth(key)}, timeout=30)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["body"]


def test_a_405_lists_every_documented_method_of_the_path(
    platform_apis: dict[str, PlatformApi],
) -> None:
    answer = httpx.request("OPTIONS", f"{platform_apis['segment'].base}/v1/segmentations")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
    assert answer.json()["errors"] == []
    offers = httpx.request("PATCH", f"{platform_apis['personalize'].base}/v1/offers/x")
    # GET /v1/offers/{customer_id} and PUT/DELETE /v1/offers/{offer_id} share this URL.
    assert offers.headers["allow"] == "DELETE, GET, PUT"


def test_feedback_with_no_well_formed_event_is_a_422_naming_the_fields(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey
) -> None:
    key = make_key("feedback:write", rate_limit_per_minute=1_000_000)
    url = f"{platform_apis['personalize'].base}/v1/feedback"
    one = httpx.post(url, json={}, headers=auth(key), timeout=30)
    assert one.status_code == 422, one.text
    assert {e["field"] for e in one.json()["errors"]} == {"decision_id", "offer_id", "kind"}
    batch = httpx.post(url, json=[{}, {"kind": "click"}], headers=auth(key), timeout=30)
    assert batch.status_code == 422, batch.text
    assert "1.decision_id" in {e["field"] for e in batch.json()["errors"]}
