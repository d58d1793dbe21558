"""The short path for imported events decides exactly as ``EventIn`` does, only faster.

Whatever the short path accepts, the model must accept too, and the COPY line it makes
must store the same values as the line made from the validated model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.imports.events import copy_line, event_copy_line, quick_copy_line
from services.ingest.records.schemas import EventIn, RecordKind, example_of
from services.ingest.records.validation import validate_record
from tests.ingest.corpus import build_corpus

pytestmark = pytest.mark.unit

_UNESCAPE = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def _unescape(field: str) -> str | None:
    if field == "\\N":
        return None
    out, i = [], 0
    while i < len(field):
        pair = field[i : i + 2]
        if pair in _UNESCAPE:
            out.append(_UNESCAPE[pair])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def stored(line: str) -> tuple[Any, ...]:
    """What Postgres makes of a COPY line: the values as they would be stored."""
    assert line.endswith("\n")
    event_id, customer_id, kind, at, channel, props = map(_unescape, line[:-1].split("\t"))
    assert at is not None
    properties = None if props is None else orjson.loads(props)
    return event_id, customer_id, kind, datetime.fromisoformat(at), channel, properties


def assert_same_decision(item: Any) -> None:
    quick = quick_copy_line(item) if isinstance(item, dict) else None
    reference = validate_record(RecordKind.EVENTS, item)
    if quick is None:
        return
    assert isinstance(reference, EventIn), (item, reference)
    assert stored(quick) == stored(copy_line(reference))


def test_the_documented_example_takes_the_short_path() -> None:
    assert quick_copy_line(example_of(EventIn)) is not None


def test_every_event_case_of_the_malformed_corpus_is_judged_as_the_model_judges_it() -> None:
    cases = [c for c in build_corpus() if c.kind == "events"]
    assert len(cases) > 100
    for case in cases:
        try:
            payload = orjson.loads(case.body)
        except orjson.JSONDecodeError:
            continue
        for item in payload if isinstance(payload, list) else [payload]:
            assert_same_decision(item)


_TEXTS = st.one_of(
    st.sampled_from(["c-1", "e-1", "web", "", "a\tb", "a\\b", "x\ny", "r\r", "n\x00ul", "é"]),
    st.text(max_size=40),
    st.text(min_size=120, max_size=140),
)
_TIMES = st.sampled_from(
    [
        "2026-10-01T12:00:00Z",
        "2026-10-01T12:00:00.5Z",
        "2026-10-01T12:00:00.1234567Z",
        "2026-10-01T12:00:00+00:00",
        "2026-10-01T12:00:00-00:00",
        "2026-10-01T12:00:00+02:00",
        "2026-10-01 12:00:00Z",
        "2026-10-01T12:00:00z",
        "2026-10-01T12:00:00",
        "2026-02-29T12:00:00Z",
        "2024-02-29T12:00:00Z",
        "2026-13-01T12:00:00Z",
        "2026-10-01T24:00:00Z",
        "1899-12-31T23:59:59Z",
        "1900-01-01T00:00:00Z",
        "2200-12-31T23:59:59Z",
        "2201-01-01T00:00:00Z",
        "2200-12-31T23:00:00-05:00",
        "1900-01-01T00:30:00+01:00",
        "20261001T120000Z",
        "\u0662\u0660\u0662\u0666-10-01T12:00:00Z",
        "",
    ]
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e16, 9.99e16, 1e17, -1e17, 1e20, 123456789012345678])
    | _TEXTS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXTS, children, max_size=3),
    max_leaves=8,
)
_IDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=130) | st.sampled_from(
    ["c-1", "a\tb", "a\\b", "x\ny", "r\r", "n\x00ul", "é", "x" * 128, "x" * 129]
)
_LIKELY = {  # mostly valid values, with the edges each check is there for
    "event_id": _IDS,
    "customer_id": _IDS,
    "type": st.sampled_from(["page_view", "refund", "purchase", "PAGE_VIEW", "teleport"]),
    "occurred_at": st.sampled_from(["2026-10-01T12:00:00Z", "2026-10-01T12:00:00.25Z"]) | _TIMES,
    "channel": st.none() | st.text(min_size=0, max_size=33) | st.sampled_from(["web", "a\tb"]),
    "properties": st.none()
    | st.dictionaries(st.text(), st.text() | st.integers(), max_size=4)
    | st.dictionaries(_TEXTS, _JSON, max_size=4),
}
_WILD = {
    "event_id": st.integers() | st.none() | st.just(["e-1"]),
    "customer_id": st.none() | st.lists(st.text(), max_size=1) | st.floats(),
    "type": st.lists(st.text(), max_size=1) | st.integers() | st.just({"a": 1}),
    "occurred_at": st.integers() | st.none() | st.floats(),
    "channel": st.integers() | st.just({"a": 1}) | st.just(["web"]),
    "properties": _JSON,
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for name, likely in _LIKELY.items():
        odds = draw(st.integers(0, 19))
        if odds == 0:
            continue  # absent
        item[name] = draw(_WILD[name] if odds == 1 else likely)
    if draw(st.integers(0, 19)) == 0:
        item[draw(st.sampled_from(["extra", "id", "tenant_id"]))] = draw(_TEXTS)
    return item


@settings(max_examples=3_000, deadline=None)
@given(events())
def test_the_short_path_never_accepts_what_the_model_refuses(item: dict[str, Any]) -> None:
    assert_same_decision(item)


def test_a_too_deeply_nested_properties_object_is_refused_by_name() -> None:
    deep: Any = "leaf"
    for _ in range(300):
        deep = {"d": deep}
    item = {**example_of(EventIn), "properties": deep}
    errors = event_copy_line(item)
    assert isinstance(errors, list)
    assert errors[0].field == "properties"
