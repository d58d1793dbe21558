"""Deeply nested free objects in bulk files: the line is rejected by number, the rest stored.

A probe sent ``attributes`` nested 255 levels in a JSONL file of four customers: the
import answered 500 and stored none of the three good ones. Deeper still (1,000 levels,
which JSON parsing accepts), validation itself overflowed Python's stack.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of

pytestmark = pytest.mark.integration
NDJSON = {"content-type": "application/x-ndjson"}
CSV = {"content-type": "text/csv"}


def nested_json(depth: int) -> bytes:
    """An object ``depth`` levels deep, written out as text (JSON parsing allows 1,024)."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def customer(i: int) -> dict[str, Any]:
    return {"customer_id": f"c-{i}", "attributes": {"tier": "gold"}}


def deep_customer_line(depth: int) -> bytes:
    return b'{"customer_id":"deep-1","attributes":' + nested_json(depth) + b"}"


def event_line(i: int, properties: bytes = b'{"path":"/"}') -> bytes:
    head = orjson.dumps(
        {
            "event_id": f"e-{i}",
            "customer_id": f"c-{i}",
            "type": "page_view",
            "occurred_at": "2026-10-01T12:00:00Z",
        }
    )
    return head[:-1] + b',"properties":' + properties + b"}"


def rejections(result: dict[str, Any]) -> list[tuple[int, str]]:
    return [(r["index"], r["errors"][0]["field"]) for r in result["rejected"]]


@pytest.mark.parametrize("depth", [255, 1_000])
def test_a_too_deep_customer_line_is_rejected_by_number_and_the_rest_stored(
    client: httpx.Client, make_key: MakeKey, engine: Engine, depth: int
) -> None:
    key = make_key()
    lines = [orjson.dumps(customer(i)) for i in (1, 2)]
    lines += [deep_customer_line(depth), orjson.dumps(customer(3))]
    response = client.post(
        "/v1/import/customers", content=b"\n".join(lines) + b"\n", headers={**auth(key), **NDJSON}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["rejected_count"]) == (3, 1)
    assert rejections(result) == [(3, "attributes")]
    assert "nested" in result["rejected"][0]["errors"][0]["message"]
    assert count(engine, "customer", tenant_of(engine, key)) == 3


def test_the_record_endpoint_refuses_the_same_record_with_a_422(
    client: httpx.Client, make_key: MakeKey
) -> None:
    key = make_key()
    response = client.post(
        "/v1/customers",
        content=deep_customer_line(255),
        headers={**auth(key), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text


def test_a_too_deep_csv_attributes_cell_is_rejected_by_row_and_the_rest_stored(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["customer_id", "attributes"])
    writer.writerow(["c-1", '{"tier":"gold"}'])
    writer.writerow(["deep-1", nested_json(1_000).decode()])
    writer.writerow(["c-2", ""])
    response = client.post(
        "/v1/import/customers", content=out.getvalue().encode(), headers={**auth(key), **CSV}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], rejections(result)) == (2, [(2, "attributes")])
    assert count(engine, "customer", tenant_of(engine, key)) == 2


@pytest.mark.parametrize("depth", [255, 1_000])
def test_a_too_deep_event_line_is_rejected_by_number_and_the_rest_stored(
    client: httpx.Client, make_key: MakeKey, engine: Engine, depth: int
) -> None:
    key = make_key()
    lines = [event_line(1), event_line(2), event_line(3, nested_json(depth)), event_line(4)]
    response = client.post(
        "/v1/import/events", content=b"\n".join(lines), headers={**auth(key), **NDJSON}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], rejections(result)) == (3, [(3, "properties")])
    assert count(engine, "event", tenant_of(engine, key)) == 3


def test_a_too_deep_csv_properties_cell_is_rejected_by_row_and_the_rest_stored(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    header = "event_id,customer_id,type,occurred_at,properties\r\n"
    rows = [
        f'e-{i},c-{i},page_view,2026-10-01T12:00:00Z,"{props}"\r\n'
        for i, props in enumerate(
            ['{""path"":""/""}', nested_json(1_000).decode().replace('"', '""'), ""], start=1
        )
    ]
    response = client.post(
        "/v1/import/events", content=(header + "".join(rows)).encode(), headers={**auth(key), **CSV}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], rejections(result)) == (2, [(2, "properties")])
    assert count(engine, "event", tenant_of(engine, key)) == 2
