"""Readers cut a streamed body into the same numbered records wherever its chunks end.

A quoted CSV field may span lines; an over-long record is refused without being kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.ingest.imports.readers import LineError, Reader, read_csv, read_jsonl

pytestmark = pytest.mark.unit


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _read(reader: Reader, data: bytes, size: int, limit: int) -> list[tuple[int, Any]]:
    async def collect() -> list[tuple[int, Any]]:
        return [pair async for batch in reader(_pieces(data, size), limit) for pair in batch]

    return asyncio.run(collect())


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1 << 20])
def test_jsonl_lines_read_alike_however_the_body_is_cut(size: int) -> None:
    data = (
        b'{"a": 1}\n\n  \n{"b": "' + b"x" * 50 + b'"}\r\n[1]\n{"c": ' + b"1" * 20 + b"}\n"
        b"{broken\n" + b'{"d": "' + b"y" * 200 + b'"}\n{"e": 5}'
    )
    read = _read(read_jsonl, data, size, limit=100)
    assert [n for n, _ in read] == [1, 4, 5, 6, 7, 8, 9]
    assert read[0][1] == {"a": 1}
    assert read[1][1] == {"b": "x" * 50}
    assert read[6][1] == {"e": 5}
    errors = {n: item for n, item in read if isinstance(item, LineError)}
    assert set(errors) == {5, 7, 8}
    assert "exceeds 100 bytes" in errors[8].message
    assert "JSON object" in errors[5].message


@pytest.mark.parametrize("size", [1, 3, 1 << 20])
def test_an_over_long_last_line_is_refused_without_its_end(size: int) -> None:
    read = _read(read_jsonl, b'{"a": 1}\n' + b"z" * 150, size, limit=100)
    assert read[0] == (1, {"a": 1})
    assert read[1][0] == 2
    assert isinstance(read[1][1], LineError)


CSV = (
    b"\xef\xbb\xbfevent_id,customer_id,rating,properties\r\n"
    b'e-1,c-1,3,"{""a"": 1}"\r\n'
    b"\r\n"
    b'e-2,"c-2, with comma",x,\r\n'
    b'e-3,"spans\nthree\nlines",,\n'
    b"e-4,c-4\n"
    b'e-5,c-"5",1,"{}"x\n'
    b"e-6," + b"y" * 150 + b",,\n"
    b'e-7,c-7,2,"not json"'
)


@pytest.mark.parametrize("size", [1, 5, 16, 64, 1 << 20])
def test_csv_rows_read_alike_however_the_body_is_cut(size: int) -> None:
    read = _read(read_csv, CSV, size, limit=100)
    assert [n for n, _ in read] == [1, 2, 3, 4, 5, 6, 7]
    rows = dict(read)
    assert rows[1] == {"event_id": "e-1", "customer_id": "c-1", "rating": 3, "properties": {"a": 1}}
    assert rows[2] == {"event_id": "e-2", "customer_id": "c-2, with comma", "rating": "x"}
    assert rows[3] == {"event_id": "e-3", "customer_id": "spans\nthree\nlines"}
    assert rows[7] == {
        "event_id": "e-7",
        "customer_id": "c-7",
        "rating": 2,
        "properties": "not json",
    }
    errors = {n: row.message for n, row in read if isinstance(row, LineError)}
    assert set(errors) == {4, 5, 6}
    assert "header has 4" in errors[4]
    assert "not valid CSV" in errors[5]
    assert "exceeds 100 bytes" in errors[6]
