"""Bulk files: CSV and JSONL of any size, streamed, in one transaction, counted like batches."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text

from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of

pytestmark = pytest.mark.integration
NDJSON = {"content-type": "application/x-ndjson"}
CSV = {"content-type": "text/csv"}


def events(n: int, start: int = 0) -> Iterator[bytes]:
    for i in range(start, start + n):
        yield (
            orjson.dumps(
                {
                    "event_id": f"e-{i}",
                    "customer_id": f"c-{i % 97}",
                    "type": "page_view",
                    "occurred_at": "2026-10-01T12:00:00Z",
                    "properties": {"path": f"/p/{i}"},
                }
            )
            + b"\n"
        )


@pytest.mark.slow
def test_a_large_jsonl_file_is_streamed_in_and_every_row_stored_once(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    body = list(events(60_000)) + list(events(1_000))  # 1,000 repeated inside the file
    response = client.post("/v1/import/events", content=iter(body), headers={**auth(key), **NDJSON})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["duplicates"], result["rejected_count"]) == (
        60_000,
        1_000,
        0,
    )
    tenant = tenant_of(engine, key)
    assert count(engine, "event", tenant) == 60_000
    assert count(engine, "customer", tenant) == 97
    # Each customer's activity is one pending refresh, however many rows arrived.
    assert count(engine, "outbox", tenant, "task_name = 'segment.refresh_customers'") == 97
    again = client.post(
        "/v1/import/events", content=iter(body[:5_000]), headers={**auth(key), **NDJSON}
    ).json()
    assert (again["accepted"], again["duplicates"]) == (0, 5_000)


def test_bad_lines_are_listed_by_line_number_and_the_rest_stored(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    lines = list(events(5))
    lines[1] = (
        b'{"event_id": "e-x", "customer_id": "c-1", "type": "teleport", '
        b'"occurred_at": "2026-10-01T12:00:00Z"}\n'
    )
    lines[3] = b"{not json\n"
    lines.append(b'{"event_id": "' + b"x" * 40_000 + b'"}\n')  # over the record limit
    response = client.post(
        "/v1/import/events", content=b"".join(lines), headers={**auth(key), **NDJSON}
    )
    result = response.json()
    assert result["accepted"] == 3
    assert [(r["index"], r["errors"][0]["field"]) for r in result["rejected"]] == [
        (2, "type"),
        (4, "record"),
        (6, "record"),
    ]
    assert count(engine, "event", tenant_of(engine, key)) == 3


def test_csv_cells_are_typed_and_json_columns_parsed(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    csv = (
        "customer_id,email,signup_at,attributes,consent\r\n"
        'c-1,ada@example.com,2025-01-01T00:00:00Z,"{""country"": ""SE""}","{""email"": true}"\r\n'
        "c-2,,2025-02-01T00:00:00Z,,\r\n"
        'c-3,"quoted, with comma@example.com",2025-02-01T00:00:00Z,,\r\n'
        "c-4,bad,2025-02-01T00:00:00Z,,\r\n"
    )
    result = client.post(
        "/v1/import/customers", content=csv.encode(), headers={**auth(key), **CSV}
    ).json()
    assert result["accepted"] == 2
    assert [(r["index"], r["errors"][0]["field"]) for r in result["rejected"]] == [
        (3, "email"),
        (4, "email"),
    ]
    with engine.connect() as conn:
        country = conn.execute(
            text(
                "SELECT attributes->>'country' FROM customer WHERE customer_id = 'c-1' "
                "AND tenant_id = :t"
            ),
            {"t": tenant_of(engine, key)},
        ).scalar_one()
    assert country == "SE"


def test_nested_kinds_are_refused_as_csv_with_a_415(
    client: httpx.Client, make_key: MakeKey
) -> None:
    key = make_key()
    response = client.post(
        "/v1/import/orders", content=b"order_id\no-1\n", headers={**auth(key), **CSV}
    )
    assert response.status_code == 415
    assert response.json()["errors"][0]["field"] == "content-type"


def test_a_file_that_breaks_mid_stream_stores_nothing(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    good = "".join(f"p-{n},Thing,home,1.5\n" for n in range(20_000)).encode()
    body = b"product_id,name,category,price\n" + good + b"p-bad,\xff\xfe,home,1\n"
    response = client.post("/v1/import/products", content=body, headers={**auth(key), **CSV})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "file"
    assert count(engine, "product", tenant_of(engine, key)) == 0
