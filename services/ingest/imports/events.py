"""Events as lines of Postgres COPY text, built straight from decoded JSON or CSV rows.

Validating each event with the ``EventIn`` model costs several times what the rest of an
import does, so the common, plainly valid event takes a short path: a few type, length
and format checks in plain Python, then one COPY line. The short path is deliberately
narrower than the model: whatever it is not sure about (a time zone other than UTC, a
number that might be out of range, a character COPY would have to escape, any doubt at
all) goes through ``EventIn`` instead, which decides and names the field. So both paths
accept the same events and store the same values; only the speed differs.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from services.ingest.records.schemas import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    EventIn,
    EventType,
    FieldError,
    RecordKind,
)
from services.ingest.records.validation import validate_record

_TYPES = frozenset(t.value for t in EventType)
_FIELDS = frozenset(EventIn.model_fields)
_UTC_TIME = re.compile(
    r"(\d{4})-(0[1-9]|1[0-2])-([0-2]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|\+00:00)",
    re.ASCII,  # Postgres reads ASCII digits only
).fullmatch
# Characters COPY text needs escaped, and NUL, which the model refuses.
_ESCAPED = re.compile(r"[\\\t\n\r\x00]").search
# In serialised properties: NUL (refused), and numbers the model may find out of range.
_DOUBTFUL_JSON = re.compile(rb"\\u0000|[0-9][eE]|[0-9]{17}").search
_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
MAX_ID, MAX_SHORT = 128, 32  # the lengths of ``Id`` and ``Short`` in the schema


def quick_copy_line(item: dict[str, Any]) -> str | None:
    """The COPY line of a plainly valid event, or None to let ``EventIn`` decide."""
    event_id = item.get("event_id")
    customer_id = item.get("customer_id")
    kind = item.get("type")
    occurred_at = item.get("occurred_at")
    channel = item.get("channel")
    properties = item.get("properties")
    if not (
        type(event_id) is str
        and type(customer_id) is str
        and type(kind) is str
        and type(occurred_at) is str
        and 0 < len(event_id) <= MAX_ID
        and 0 < len(customer_id) <= MAX_ID
        and kind in _TYPES
        and item.keys() <= _FIELDS
    ):
        return None
    if channel is None:
        channel, texts = _NULL, event_id + customer_id
    elif type(channel) is str and 0 < len(channel) <= MAX_SHORT:
        texts = event_id + customer_id + channel
    else:
        return None
    if _ESCAPED(texts) or not _plain_utc_time(occurred_at):
        return None
    if properties is None:
        props = _NULL
    elif type(properties) is dict:
        try:
            serialised = orjson.dumps(properties)
        except orjson.JSONEncodeError:
            return None
        if _DOUBTFUL_JSON(serialised):
            return None
        props = serialised.decode().replace("\\", "\\\\")
    else:
        return None
    return f"{event_id}\t{customer_id}\t{kind}\t{occurred_at}\t{channel}\t{props}\n"


def _plain_utc_time(value: str) -> bool:
    match = _UTC_TIME(value)
    if match is None or not EARLIEST_YEAR <= int(match.group(1)) <= LATEST_YEAR:
        return False
    try:
        datetime.fromisoformat(value)  # the day exists in its month
    except ValueError:
        return False
    return True


def _field(value: str | None) -> str:
    return _NULL if value is None else value.translate(_COPY_ESCAPES)


def copy_line(record: EventIn) -> str:
    """The COPY line of a validated event; raises ``orjson.JSONEncodeError`` if too deep."""
    props = None if record.properties is None else orjson.dumps(record.properties).decode()
    return (
        f"{_field(record.event_id)}\t{_field(record.customer_id)}\t{record.type.value}\t"
        f"{record.occurred_at.isoformat()}\t{_field(record.channel)}\t{_field(props)}\n"
    )


def event_copy_line(item: dict[str, Any]) -> tuple[str, str] | list[FieldError]:
    """``(customer_id, COPY line)`` of a valid event, or what is wrong with it by field."""
    line = quick_copy_line(item)
    if line is not None:
        return item["customer_id"], line
    result = validate_record(RecordKind.EVENTS, item)
    if isinstance(result, list):
        return result
    assert isinstance(result, EventIn)
    try:
        return result.customer_id, copy_line(result)
    except orjson.JSONEncodeError:
        return [FieldError(field="properties", message="nested too deeply")]
