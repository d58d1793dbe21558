"""``GET /v1/segments/{key}/export``: every current member of a segment, streamed as CSV
or JSON Lines, with the columns the caller chose.

Members are read page by page in customer order (keyset, each page a short query of its
own, so a slow reader holds no connection between pages); a customer appears once, and
one who joins or leaves during the export may or may not be in it. No contact details
are exported: the customer's id is the key a CRM matches on.

CSV cells are neutralised against formula injection (``shared.web.csv_export``): a text
cell that a spreadsheet would read as a formula gets a leading ``'`` (numbers are written
by us and never start with anything but a digit or a minus sign of a number).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine, text
from sqlmodel import Session

from services.segment.segmentations.repository import active_run
from services.segment.segmentations.schemas import error_responses
from services.segment.segments import repository as repo
from services.segment.segments.router import NO_ACTIVE_RUN, SegmentKey, _unknown_segment
from shared.auth import Principal, Scope
from shared.web.csv_export import safe_cell
from shared.web.deps import Database, DatabaseDep, require
from shared.web.errors import ApiError

router = APIRouter(prefix="/v1/segments", tags=["segments"])
ReaderDep = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]

PAGE_SIZE: Final = 2000


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


# Column name -> SQL expression (selected for every page; the chosen ones are written).
COLUMNS: Final = {
    "customer_id": "c.customer_id",
    "segment": "m.segment_key",
    "since": "m.since",
    "signup_at": "c.signup_at",
    "clv": "s.clv",
    "p_alive": "s.p_alive",
    "expected_purchases": "s.expected_purchases",
    "churn": "s.churn",
    "attributes": "c.attributes",
}
DEFAULT_COLUMNS: Final = ("customer_id", "segment", "since", "clv", "p_alive", "churn")
_PAGE = text(
    f"""
    SELECT m.customer_pk, {", ".join(f"{sql} AS {name}" for name, sql in COLUMNS.items())}
    FROM segment_membership m
    JOIN customer c ON c.id = m.customer_pk
    LEFT JOIN customer_score s ON s.customer_pk = m.customer_pk
    WHERE m.tenant_id = :tenant AND m.segment_key = :key AND m.customer_pk > :after
    ORDER BY m.customer_pk
    LIMIT :limit
    """
)


def parse_columns(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return DEFAULT_COLUMNS
    names = tuple(name.strip() for name in raw.split(","))
    unknown = [name for name in names if name not in COLUMNS]
    if unknown or not names or len(set(names)) != len(names):
        problem = f"unknown {unknown[0]!r}" if unknown else "empty or repeated names"
        raise ApiError(
            422,
            "invalid request",
            errors=[
                {"field": "columns", "message": f"{problem}; choose from {', '.join(COLUMNS)}"}
            ],
        )
    return names


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def csv_cell(value: Any) -> str | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    if isinstance(value, dict | list):
        return safe_cell(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    return safe_cell(str(_plain(value)))


def csv_lines(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([csv_cell(row[name]) for name in columns] for row in rows)
    return buffer.getvalue()


def jsonl_lines(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    return "".join(
        json.dumps({name: _plain(row[name]) for name in columns}, ensure_ascii=False) + "\n"
        for row in rows
    )


def _check_segment(engine: Engine, tenant_id: int, key: str) -> None:
    with Session(engine) as session:
        run = active_run(session, tenant_id=tenant_id)
        if run is None:
            raise ApiError(404, NO_ACTIVE_RUN)
        if not repo.segment_in_run(session, tenant_id=tenant_id, run_id=run["id"], key=key):
            raise _unknown_segment(key)


def _page(engine: Engine, tenant_id: int, key: str, after: int) -> list[dict[str, Any]]:
    params = {"tenant": tenant_id, "key": key, "after": after, "limit": PAGE_SIZE}
    with Session(engine) as session:
        return [dict(row) for row in session.execute(_PAGE, params).mappings()]


async def _stream(
    database: Database,
    tenant_id: int,
    key: str,
    columns: tuple[str, ...],
    lines: Callable[[list[dict[str, Any]], tuple[str, ...]], str],
    header: str,
) -> AsyncIterator[str]:
    if header:
        yield header
    after = 0
    while True:
        rows = await database.run(_page, database.engine, tenant_id, key, after)
        if rows:
            yield lines(rows, columns)
        if len(rows) < PAGE_SIZE:
            return
        after = rows[-1]["customer_pk"]


@router.get(
    "/{key}/export",
    summary="Every member of a segment, as CSV or JSON Lines",
    description="Streams every current member of the segment in the active segmentation, "
    f"one line each, with the chosen `columns` (comma-separated; from {', '.join(COLUMNS)}; "
    f"default {', '.join(DEFAULT_COLUMNS)}). CSV has a header line; text that a "
    "spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a line "
    "break) is written behind a `'`, so it opens as plain text. No contact details are exported. "
    "Needs `segments:read`.",
    responses=error_responses(404)
    | {200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
    response_class=StreamingResponse,
)
async def read_segment_export(
    key: SegmentKey,
    principal: ReaderDep,
    database: DatabaseDep,
    export_format: Annotated[
        ExportFormat, Query(alias="format", description="csv or jsonl")
    ] = ExportFormat.CSV,
    columns: Annotated[
        str | None, Query(min_length=1, max_length=500, description="comma-separated names")
    ] = None,
) -> StreamingResponse:
    chosen = parse_columns(columns)
    await database.run(_check_segment, database.engine, principal.tenant_id, key)
    safe_key = re.sub(r"[^A-Za-z0-9_-]", "_", key)
    headers = {
        "Content-Disposition": f'attachment; filename="segment-{safe_key}.{export_format}"',
        "X-Content-Type-Options": "nosniff",
    }
    if export_format is ExportFormat.CSV:
        body = _stream(
            database, principal.tenant_id, key, chosen, csv_lines, ",".join(chosen) + "\r\n"
        )
        return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers=headers)
    body = _stream(database, principal.tenant_id, key, chosen, jsonl_lines, "")
    return StreamingResponse(body, media_type="application/x-ndjson", headers=headers)
