"""The benchmarks' event streams: valid, deterministic, and never held in memory."""

from __future__ import annotations

import csv
import inspect
import json
import tracemalloc
from pathlib import Path

import pytest

from segmenta.demo.event_stream import iter_events, write_events_file
from services.ingest.records.schemas import EventIn

pytestmark = pytest.mark.unit


def test_iter_events_streams_valid_events() -> None:
    stream = iter_events(10**12, 3)
    assert inspect.isgenerator(stream)
    first = next(stream)  # a trillion events, but only one is ever made
    EventIn.model_validate_json(json.dumps(first))
    events = list(iter_events(2_000, 3, customers=50))
    assert next(iter_events(5, 3)) == first
    assert events == list(iter_events(2_000, 3, customers=50))
    assert len({e["event_id"] for e in events}) == 2_000
    assert {e["customer_id"] for e in events} <= {f"c-{i:06d}" for i in range(1, 51)}
    assert len({e["type"] for e in events}) >= 10
    for event in events:
        EventIn.model_validate_json(json.dumps(event))


def test_iter_events_memory_stays_flat() -> None:
    tracemalloc.start()
    try:
        for _ in iter_events(20_000, 5):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_write_events_file_csv(tmp_path: Path) -> None:
    path = tmp_path / "bench" / "events.csv"
    assert write_events_file(path, 500, 9, "csv") == 500
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["event_id", "customer_id", "type", "occurred_at", "channel", "properties"]
    assert len(rows) == 501
    for row in rows[1:]:
        record = dict(zip(rows[0], row, strict=True))
        record["properties"] = json.loads(record["properties"])
        EventIn.model_validate_json(json.dumps(record))
    assert [r[0] for r in rows[1:]] == [e["event_id"] for e in iter_events(500, 9)]


def test_write_events_file_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    assert write_events_file(path, 300, 9, "jsonl") == 300
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 300
    for line in lines:
        EventIn.model_validate_json(line)
    with pytest.raises(ValueError, match="format"):
        write_events_file(path, 1, 9, "parquet")  # type: ignore[arg-type]
