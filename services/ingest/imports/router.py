"""``POST /v1/import/{kind}``: a CSV or JSONL file of any size, in one transaction.

The body is read as a stream and stored in chunks as it arrives, so memory stays flat;
everything commits at the end, so an import that breaks off stores nothing. A line that
cannot be read or is not a valid record is rejected on its own and the others are stored,
as in a batch. The answer has the same counts as the record endpoints; `rejected` lists
the first rejections by line (data row) number, `rejected_count` counts them all.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlmodel import Session

from services.ingest.imports.chunks import Chunk, new_chunk
from services.ingest.imports.readers import LineError, reader_for
from services.ingest.metrics import count_records
from services.ingest.records.router import ERROR_RESPONSES
from services.ingest.records.schemas import (
    FieldError,
    IngestResult,
    RecordKind,
    RejectedRecord,
)
from services.ingest.records.validation import record_limit
from shared.auth import Principal, Scope
from shared.web.deps import EngineDep, SettingsDep, require
from shared.web.errors import ApiError

router = APIRouter(prefix="/v1/import", tags=["import"])
CHUNK_RECORDS = 5_000
# Events are gathered as COPY text, a few hundred bytes a row: bigger chunks, fewer merges.
CHUNK_EVENTS = 20_000
MAX_LISTED_REJECTIONS = 1_000


@dataclass
class ImportTally:
    accepted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: list[RejectedRecord] = field(default_factory=list)
    rejected_count: int = 0

    def reject(self, line: int, errors: list[FieldError]) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED_REJECTIONS:
            self.rejected.append(RejectedRecord(index=line, errors=errors))


@dataclass
class ImportTransaction:
    """One session and transaction for the whole import, used from worker threads in turn."""

    engine: Engine
    tenant_id: int
    secret: str
    session: Session = field(init=False)

    def __post_init__(self) -> None:
        self.session = Session(self.engine, expire_on_commit=False)

    def store(self, chunk: Chunk, tally: ImportTally) -> None:
        outcome = chunk.store(self.session, tenant_id=self.tenant_id, secret=self.secret)
        tally.accepted += outcome.accepted
        tally.duplicates += outcome.duplicates
        tally.suppressed += outcome.suppressed

    def commit(self) -> None:
        self.session.commit()

    def close(self) -> None:
        self.session.close()  # rolls back whatever did not commit


def _import_description(kind: RecordKind) -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    # Anything but CSV is read as JSONL (one JSON object per line).
    media: dict[str, Any] = {"application/x-ndjson": binary, "application/octet-stream": binary}
    if kind.value in {"customers", "products", "events", "reviews"}:
        media["text/csv"] = binary
    return {"requestBody": {"required": True, "content": media}}


async def _run_import(
    request: Request, kind: RecordKind, principal: Principal, engine: Engine, secret: str
) -> IngestResult:
    settings = request.app.state.settings
    reader = reader_for(kind, request.headers.get("content-type", ""), None)
    limit = record_limit(kind, settings)
    tally = ImportTally()
    full_size = CHUNK_EVENTS if kind is RecordKind.EVENTS else CHUNK_RECORDS
    # Small first chunks get Postgres working early; later ones grow to the full size.
    chunk_size = full_size // 8
    job = ImportTransaction(engine, principal.tenant_id, secret)
    chunk = new_chunk(kind)
    # One chunk is written to Postgres (in a thread) while the next is parsed and
    # validated here, so the API and the database work at the same time.
    writing: asyncio.Future[None] | None = None
    try:
        async for batch in reader(request.stream(), limit):
            for line, item in batch:
                errors = (
                    [FieldError(field=item.field, message=item.message)]
                    if isinstance(item, LineError)
                    else chunk.add(item)
                )
                if errors:
                    tally.reject(line, errors)
            if len(chunk) >= chunk_size:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(run_in_threadpool(job.store, chunk, tally))
                chunk = new_chunk(kind)
                chunk_size = min(2 * chunk_size, full_size)
        if writing is not None:
            await writing
        if len(chunk):
            await run_in_threadpool(job.store, chunk, tally)
        if not (tally.accepted or tally.duplicates or tally.suppressed or tally.rejected_count):
            raise ApiError(
                422, "the file holds no records", errors=[{"field": "file", "message": "empty"}]
            )
        await run_in_threadpool(job.commit)
    finally:
        if writing is not None and not writing.done():
            # The session is the thread's until its chunk is written; its error, if
            # any, is not the one this import reports.
            with contextlib.suppress(Exception):
                await asyncio.shield(writing)
        await run_in_threadpool(job.close)
    count_records(
        kind.value,
        accepted=tally.accepted,
        duplicates=tally.duplicates,
        suppressed=tally.suppressed,
        rejected=tally.rejected_count,
    )
    return IngestResult(
        accepted=tally.accepted,
        duplicates=tally.duplicates,
        suppressed=tally.suppressed,
        rejected=tally.rejected,
        rejected_count=tally.rejected_count,
    )


def _make_endpoint(kind: RecordKind, *scopes: Scope) -> Any:
    async def import_file(
        request: Request,
        principal: Annotated[Principal, Depends(require(*scopes))],
        engine: EngineDep,
        settings: SettingsDep,
    ) -> IngestResult:
        secret = settings.secret_key.get_secret_value()
        return await _run_import(request, kind, principal, engine, secret)

    import_file.__name__ = f"import_{kind.value}"
    return import_file


for _kind in RecordKind:
    _scopes = (
        (Scope.INGEST_WRITE, Scope.TRANSCRIPTS_WRITE)
        if _kind is RecordKind.TRANSCRIPTS
        else (Scope.INGEST_WRITE,)
    )
    router.add_api_route(
        f"/{_kind.value}",
        _make_endpoint(_kind, *_scopes),
        methods=["POST"],
        response_model=IngestResult,
        summary=f"Bulk import {_kind.value} (CSV or JSONL)",
        description=(
            "Streams the body (`application/x-ndjson`, or `text/csv` for flat kinds) and stores "
            "it in one transaction. A bad line is rejected and the others stored: "
            "`rejected[].index` is its 1-based line or data-row number."
        ),
        responses=ERROR_RESPONSES,
        openapi_extra=_import_description(_kind),
    )
