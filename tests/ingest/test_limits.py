"""Size limits: refused with 413 while streaming, and nothing of the request is stored."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from tests.conftest import MakeKey
from tests.support.http import assert_nothing_stored, auth, count, tenant_of

pytestmark = pytest.mark.integration


def event(n: int, **extra: object) -> dict[str, object]:
    return {
        "event_id": f"e-{n}",
        "customer_id": f"c-{n % 50}",
        "type": "page_view",
        "occurred_at": "2026-10-30T17:55:02Z",
        **extra,
    }


@pytest.fixture
def tenant_key(make_key: MakeKey, engine: Engine) -> tuple[str, int]:
    key = make_key()
    return key, tenant_of(engine, key)


def test_a_record_over_32_kib_is_refused(
    client: httpx.Client, tenant_key: tuple[str, int], engine: Engine
) -> None:
    key, tenant = tenant_key
    big = event(1, properties={"blob": "x" * (33 * 1024)})
    response = client.post("/v1/events", json=[event(0), big], headers=auth(key))
    assert response.status_code == 413
    assert "record 1" in response.json()["detail"]
    assert_nothing_stored(engine, tenant)


def test_a_transcript_may_be_larger_than_other_records_up_to_256_kib(
    client: httpx.Client, tenant_key: tuple[str, int]
) -> None:
    key, _ = tenant_key
    turns = [{"speaker": "customer", "text": "word " * 1500} for _ in range(9)]  # ~67 KiB
    transcript = {
        "transcript_id": "t-1",
        "customer_id": "c-1",
        "channel": "call",
        "started_at": "2026-11-03T10:15:00Z",
        "turns": turns,
    }
    assert client.post("/v1/transcripts", json=transcript, headers=auth(key)).status_code == 200
    transcript["turns"] = turns * 5  # ~335 KiB
    transcript["transcript_id"] = "t-2"
    response = client.post(
        "/v1/transcripts",
        content=orjson.dumps(transcript),
        headers={**auth(key), "content-type": "application/json"},
    )
    assert response.status_code == 413


def test_a_batch_over_2500_records_is_refused(
    client: httpx.Client, tenant_key: tuple[str, int], engine: Engine
) -> None:
    key, tenant = tenant_key
    tiny = [
        {
            "event_id": str(n),
            "customer_id": "c",
            "type": "search",
            "occurred_at": "2026-01-01T00:00:00Z",
        }
        for n in range(2_501)
    ]
    body = orjson.dumps(tiny)
    assert len(body) < 500_000  # the count, not the size, is what is over
    response = client.post(
        "/v1/events", content=body, headers={**auth(key), "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "2500" in response.json()["detail"]
    assert_nothing_stored(engine, tenant)


def test_a_10_mb_body_is_refused_by_its_declared_length(
    client: httpx.Client, tenant_key: tuple[str, int], engine: Engine
) -> None:
    key, tenant = tenant_key
    body = orjson.dumps([event(n) for n in range(110_000)])
    assert len(body) > 10_000_000
    response = client.post(
        "/v1/events", content=body, headers={**auth(key), "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert_nothing_stored(engine, tenant)


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(
    client: httpx.Client, tenant_key: tuple[str, int], engine: Engine
) -> None:
    key, tenant = tenant_key

    def chunks() -> Iterator[bytes]:
        yield b"["
        for n in range(100_000):  # ~10 MB if it were all read
            piece = orjson.dumps(event(n)) + b","
            yield piece
        yield orjson.dumps(event(-1)) + b"]"

    try:
        response = client.post(
            "/v1/events",
            content=chunks(),
            headers={**auth(key), "content-type": "application/json"},
        )
    except httpx.TransportError:
        pytest.fail("the server dropped the connection instead of answering 413")
    assert response.status_code == 413
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_nothing_stored(engine, tenant)


def test_a_body_just_under_the_limit_is_accepted(
    client: httpx.Client, tenant_key: tuple[str, int], engine: Engine
) -> None:
    key, tenant = tenant_key
    records = [event(n, channel="web", properties={"q": "x" * 60}) for n in range(2_500)]
    body = orjson.dumps(records)
    assert 400_000 < len(body) < 500_000
    response = client.post(
        "/v1/events", content=body, headers={**auth(key), "content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 2_500
    assert count(engine, "event", tenant) == 2_500
