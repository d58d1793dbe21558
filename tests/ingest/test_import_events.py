"""Bulk event imports store what the record endpoint would, in either file format."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text

from services.ingest.imports.router import CHUNK_EVENTS
from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of

pytestmark = pytest.mark.integration
NDJSON = {"content-type": "application/x-ndjson"}
CSV = {"content-type": "text/csv"}
COLUMNS = ("event_id", "customer_id", "type", "occurred_at", "channel", "properties")


def event(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"e-{i}",
        "customer_id": f"c-{i % 7}",
        "type": "add_to_cart",
        "occurred_at": "2026-10-01T12:00:00Z",
        "channel": "web",
        "properties": {"product_id": f"p-{i}"},
        **fields,
    }


# Valid, but each one outside the short path: the model decides and they are stored alike.
UNUSUAL = [
    event(101, occurred_at="2026-10-01T14:00:00.123+02:00"),
    event(102, channel="tab\there", event_id="back\\slash"),
    event(
        103,
        properties={"big": 2**62, "quote": 'say "hi"\n', "nested": [{"x": 1.5e15}], "e": 2.5e-7},
    ),
    event(104, channel=None, properties=None),
    event(105, customer_id="c-new\tline"),
]


def jsonl(items: list[Any]) -> bytes:
    return b"".join((i if isinstance(i, bytes) else orjson.dumps(i)) + b"\n" for i in items)


def as_csv(items: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for item in items:
        cells = [item.get(c) for c in COLUMNS]
        props = cells[-1]
        cells[-1] = None if props is None else orjson.dumps(props).decode()
        writer.writerow(["" if c is None else c for c in cells])
    return out.getvalue().encode()


def stored_events(engine: Engine, tenant: int) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT e.event_id, c.customer_id, e.type, e.occurred_at, e.channel, "
                    "e.properties FROM event e JOIN customer c ON c.id = e.customer_pk "
                    "WHERE e.tenant_id = :t ORDER BY e.event_id"
                ),
                {"t": tenant},
            )
        ]


def test_bad_lines_among_good_ones_are_named_and_the_good_ones_stored_as_sent(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    # Parses, but is too deep to serialise again.
    deep = orjson.dumps(event(10))[:-1] + b',"properties":{"d":' + b"[" * 300 + b"]" * 300 + b"}}"
    bad = {
        3: event(3, type="teleport"),
        5: event(5, customer_id="c-\x00"),
        8: event(8, tenant_id=1),
        9: event(9, occurred_at="2026-02-30T12:00:00Z"),
        10: deep,
        12: event(12, properties={"n": 1e18}),
    }
    items = [bad.get(i, event(i)) for i in range(1, 13)] + UNUSUAL
    response = client.post(
        "/v1/import/events", content=jsonl(items), headers={**auth(key), **NDJSON}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["rejected_count"]) == (6 + len(UNUSUAL), 6), result
    assert [(r["index"], r["errors"][0]["field"]) for r in result["rejected"]] == [
        (3, "type"),
        (5, "customer_id"),
        (8, "tenant_id"),
        (9, "occurred_at"),
        (10, "properties"),
        (12, "properties"),
    ]
    rows = {r[0]: r for r in stored_events(engine, tenant_of(engine, key))}
    assert len(rows) == 6 + len(UNUSUAL)
    assert rows["e-101"][3].isoformat() == "2026-10-01T12:00:00.123000+00:00"
    assert rows["back\\slash"][4] == "tab\there"
    assert rows["e-103"][5] == UNUSUAL[2]["properties"]
    assert rows["e-104"][4:] == (None, None)
    assert rows["e-105"][1] == "c-new\tline"


def test_csv_and_jsonl_imports_store_the_same_rows(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    items = [event(i) for i in range(50)] + UNUSUAL
    stored = []
    for body, headers in ((jsonl(items), NDJSON), (as_csv(items), CSV)):
        key = make_key()
        response = client.post("/v1/import/events", content=body, headers={**auth(key), **headers})
        assert response.json()["accepted"] == len(items), response.text
        stored.append(stored_events(engine, tenant_of(engine, key)))
    assert stored[0] == stored[1]
    assert len(stored[0]) == len(items)


def test_events_of_an_erased_customer_are_suppressed_across_chunks(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("admin", "ingest:write")
    client.delete("/v1/customers/c-3", headers=auth(key)).raise_for_status()
    n = CHUNK_EVENTS + 700
    items = [event(i) for i in range(n)]
    items[CHUNK_EVENTS + 10] = event(CHUNK_EVENTS + 10, type="nope")  # well past the first chunk
    items += items[:100]  # repeated at the end of the file
    body = jsonl(items)
    pieces = [body[i : i + 65_536] for i in range(0, len(body), 65_536)]
    response = client.post(
        "/v1/import/events", content=iter(pieces), headers={**auth(key), **NDJSON}
    )
    result = response.json()
    erased = sum(1 for i in range(n) if i % 7 == 3 and i != CHUNK_EVENTS + 10)
    erased_again = sum(1 for i in range(100) if i % 7 == 3)
    assert result["suppressed"] == erased + erased_again
    assert result["rejected"] == [
        {"index": CHUNK_EVENTS + 11, "errors": [result["rejected"][0]["errors"][0]]}
    ]
    assert result["accepted"] == n - 1 - erased
    assert result["duplicates"] == 100 - erased_again
    tenant = tenant_of(engine, key)
    assert count(engine, "event", tenant) == n - 1 - erased
    assert count(engine, "customer", tenant, "customer_id = 'c-3'") == 0
    # One pending refresh per customer that got events.
    assert count(engine, "outbox", tenant, "task_name = 'segment.refresh_customers'") == 6
