"""Free objects (``attributes``, ``properties``) are checked without recursion, to a bound
that is exactly what can be stored: no depth can overflow Python's stack or reach the
serialiser's limit after validation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.ingest.imports.events import event_copy_line
from services.ingest.records.schemas import (
    MAX_NESTING,
    CustomerIn,
    EventIn,
    FieldError,
    RecordKind,
    example_of,
)
from services.ingest.records.validation import validate_record

pytestmark = pytest.mark.unit


def nested(depth: int, leaf: Any = "leaf", *, lists: bool = False) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if lists else {"a": value}
    return value


def field_errors(kind: RecordKind, item: dict[str, Any]) -> list[FieldError]:
    result = validate_record(kind, item)
    assert isinstance(result, list), "accepted"
    return result


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 1_000, 100_000])
@pytest.mark.parametrize("lists", [False, True])
def test_any_depth_beyond_the_bound_is_a_field_error_not_a_crash(depth: int, lists: bool) -> None:
    attributes = {"x": nested(depth - 1, lists=lists)}
    errors = field_errors(RecordKind.CUSTOMERS, {"customer_id": "c-1", "attributes": attributes})
    assert [e.field for e in errors] == ["attributes"]
    assert "nested" in errors[0].message


def test_the_deepest_object_allowed_is_stored_as_sent() -> None:
    attributes = nested(MAX_NESTING - 1, {})  # MAX_NESTING objects in all
    record = validate_record(RecordKind.CUSTOMERS, {"customer_id": "c", "attributes": attributes})
    assert isinstance(record, CustomerIn)
    assert orjson.loads(orjson.dumps(record.attributes)) == attributes


def test_the_bound_is_what_the_serialiser_can_write() -> None:
    orjson.dumps(nested(MAX_NESTING - 1, {}))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(nested(MAX_NESTING, {}))


@pytest.mark.parametrize("leaf", ["a\x00b", 1e20, {"k\x00": 1}])
def test_nul_and_huge_numbers_are_still_found_at_the_deepest_level(leaf: Any) -> None:
    attributes = nested(MAX_NESTING - 2, leaf)
    errors = field_errors(RecordKind.CUSTOMERS, {"customer_id": "c", "attributes": attributes})
    assert [e.field for e in errors] == ["attributes"]
    assert "nested" not in errors[0].message


@pytest.mark.parametrize("depth", [255, 1_000, 100_000])
def test_a_too_deep_event_is_refused_by_name_on_either_path(depth: int) -> None:
    item = {**example_of(EventIn), "properties": nested(depth)}
    errors = event_copy_line(item)
    assert isinstance(errors, list)
    assert [e.field for e in errors] == ["properties"]
