"""Single-record posts get the same answers, headers and metrics as any other request.

Record posts are answered in front of FastAPI (``services/ingest/records/fast_path.py``);
these pin what a client and the operator see of a single record's refusals and successes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from tests.conftest import MakeKey
from tests.support.http import assert_nothing_stored, auth, count, tenant_of

pytestmark = pytest.mark.integration

EVENT = {
    "event_id": "e-1",
    "customer_id": "c-1",
    "type": "page_view",
    "occurred_at": "2026-10-30T17:55:02Z",
}


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """The sample of ``name`` with exactly these labels in /metrics (0 if none yet)."""
    for line in client.get("/metrics").text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return 0.0


def test_an_accepted_record_is_answered_and_counted_in_the_metrics(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    route = {"route": "/v1/events", "method": "POST", "status": "200"}
    requests = metric(client, "segmenta_http_request_seconds_count", **route)
    records = metric(client, "segmenta_ingest_records_total", kind="events", outcome="accepted")
    response = client.post("/v1/events", json=EVENT, headers=auth(key))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "suppressed": 0,
        "rejected": [],
        "rejected_count": 0,
    }
    assert metric(client, "segmenta_http_request_seconds_count", **route) == requests + 1
    accepted = metric(client, "segmenta_ingest_records_total", kind="events", outcome="accepted")
    assert accepted == records + 1
    assert count(engine, "event", tenant_of(engine, key)) == 1


def test_a_record_sent_as_text_is_a_415_naming_the_content_type(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    response = client.post(
        "/v1/events",
        content=orjson.dumps(EVENT),
        headers={**auth(key), "content-type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.json()["errors"] == [
        {"field": "content-type", "message": "must be application/json"}
    ]
    assert_nothing_stored(engine, tenant_of(engine, key))


def test_a_chunked_single_record_over_the_body_limit_is_a_413(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()

    def chunks() -> Iterator[bytes]:
        yield orjson.dumps(EVENT)[:-1] + b', "properties": {"note": "'
        for _ in range(100):  # ~1 MB, twice the limit
            yield b"x" * 10_000
        yield b'"}}'

    response = client.post(
        "/v1/events", content=chunks(), headers={**auth(key), "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.json()["errors"][0]["field"] == "body"
    assert_nothing_stored(engine, tenant_of(engine, key))


def test_a_single_record_without_a_valid_key_is_a_401_with_its_challenge(
    client: httpx.Client,
) -> None:
    route = {"route": "/v1/events", "method": "POST", "status": "401"}
    before = metric(client, "segmenta_http_request_seconds_count", **route)
    for headers in ({}, {"Authorization": "Basic abc"}, auth("sgm_0123456789ab_" + "x" * 43)):
        response = client.post("/v1/events", json=EVENT, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["errors"][0]["field"] == "Authorization"
    assert metric(client, "segmenta_http_request_seconds_count", **route) == before + 3


def test_a_single_record_from_a_key_without_the_scope_is_a_403(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("segments:read")
    response = client.post("/v1/events", json=EVENT, headers=auth(key))
    assert response.status_code == 403
    assert "ingest:write" in response.json()["detail"]
    transcript_key = make_key("transcripts:write")
    assert client.post("/v1/events", json=EVENT, headers=auth(transcript_key)).status_code == 403
    assert_nothing_stored(engine, tenant_of(engine, key))


def test_single_records_over_the_rate_limit_are_a_429_with_retry_after(
    client: httpx.Client, make_key: MakeKey
) -> None:
    key = make_key(rate_limit_per_minute=2)
    events = [{**EVENT, "event_id": f"e-{n}"} for n in range(3)]
    statuses = [client.post("/v1/events", json=e, headers=auth(key)).status_code for e in events]
    assert statuses[:2] == [200, 200]
    if statuses[2] != 429:  # the minute turned between the requests
        pytest.skip("the rate-limit window changed during the test")
    limited = client.post("/v1/events", json=EVENT, headers=auth(key))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60


def test_other_methods_and_paths_are_still_the_app_s(client: httpx.Client) -> None:
    assert client.get("/v1/events").status_code == 405
    assert client.post("/v1/nothing", json=EVENT).status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert {f"/v1/{kind}" for kind in ("customers", "events", "transcripts")} <= set(paths)
