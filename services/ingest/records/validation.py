"""Turning a request body into valid records and per-item rejections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from services.ingest.records.schemas import (
    RECORD_MODELS,
    FieldError,
    Record,
    RecordKind,
    RejectedRecord,
)
from shared.settings import LimitSettings
from shared.web.errors import ApiError


@dataclass
class ValidatedBatch:
    records: list[Record] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    total: int = 0


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(422, "request body is empty", errors=[{"field": "body", "message": "empty"}])
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            422, "request body is not valid JSON", errors=[{"field": "body", "message": str(exc)}]
        ) from None


def record_limit(kind: RecordKind, limits: LimitSettings) -> int:
    if kind is RecordKind.TRANSCRIPTS:
        return limits.max_transcript_bytes
    return limits.max_record_bytes


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(field=".".join(str(p) for p in err["loc"]) or "record", message=err["msg"])
        for err in exc.errors(include_url=False, include_input=False)
    ]


def validate_record(kind: RecordKind, item: Any) -> Record | list[FieldError]:
    if not isinstance(item, dict):
        return [FieldError(field="record", message="must be a JSON object")]
    try:
        return RECORD_MODELS[kind].model_validate(item)
    except ValidationError as exc:
        return _field_errors(exc)


def check_record_size(kind: RecordKind, item: Any, index: int, limits: LimitSettings) -> None:
    limit = record_limit(kind, limits)
    try:
        size = len(orjson.dumps(item))
    except orjson.JSONEncodeError:  # nested deeper than anything a record needs
        raise ApiError(
            422,
            f"record {index} is nested too deeply",
            errors=[{"field": f"{index}", "message": "nested too deeply"}],
        ) from None
    if size > limit:
        raise ApiError(
            413,
            f"record {index} is larger than {limit} bytes",
            errors=[{"field": f"{index}", "message": f"record exceeds {limit} bytes"}],
        )


def validate_batch(kind: RecordKind, payload: Any, limits: LimitSettings) -> ValidatedBatch:
    """One record or an array of records → valid records plus per-item errors."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise ApiError(
            422, "the array holds no records", errors=[{"field": "body", "message": "empty"}]
        )
    if len(items) > limits.max_batch_items:
        raise ApiError(413, f"a request may hold at most {limits.max_batch_items} records")
    batch = ValidatedBatch(total=len(items))
    for index, item in enumerate(items):
        check_record_size(kind, item, index, limits)
        result = validate_record(kind, item)
        if isinstance(result, Record):
            batch.records.append(result)
        else:
            batch.rejected.append(RejectedRecord(index=index, errors=result))
    if not isinstance(payload, list) and batch.rejected:
        errors = [e.model_dump() for e in batch.rejected[0].errors]
        raise ApiError(422, f"invalid {kind.value[:-1]} record", errors=errors)
    if not batch.records:
        raise ApiError(422, "no record in the batch is valid", errors=_flatten(batch.rejected))
    return batch


def _flatten(rejected: list[RejectedRecord], limit: int = 50) -> list[dict[str, str]]:
    return [
        {"field": f"{r.index}.{e.field}", "message": e.message}
        for r in rejected[:limit]
        for e in r.errors
    ]
