"""Streaming readers for bulk files: JSONL and CSV, line by line, memory flat at any size.

Each reader turns an async stream of byte chunks into lists of ``(line_number, item)``
pairs, where ``item`` is the decoded object or a ``LineError`` saying why the line could
not be read.
A line longer than the record limit is skipped without being buffered.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from services.ingest.records.schemas import RecordKind
from shared.web.errors import ApiError


@dataclass(frozen=True)
class LineError:
    field: str
    message: str


Item = dict[str, Any] | LineError

# CSV holds text only: these columns are converted before validation.
_INTEGER_COLUMNS = frozenset({"rating", "quantity"})
_NUMBER_COLUMNS = frozenset({"price", "total", "unit_price"})
_JSON_COLUMNS = frozenset({"attributes", "consent", "properties"})
# What the csv module says when the lines so far end inside a quoted field.
_UNFINISHED = ("new-line", "EOF", "unexpected end of data")
CSV_KINDS = frozenset(
    {RecordKind.CUSTOMERS, RecordKind.PRODUCTS, RecordKind.EVENTS, RecordKind.REVIEWS}
)


async def read_jsonl(
    chunks: AsyncIterator[bytes], max_line_bytes: int
) -> AsyncIterator[list[tuple[int, Item]]]:
    """The lines of each chunk received, decoded, as one list (a list costs less than a
    step of an async generator per line)."""
    pending = b""  # the start of a line that the next chunk ends
    line_no = 0
    skipping = False  # inside an over-long line, dropping bytes up to its end
    async for chunk in chunks:
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            if not skipping and len(pending) + len(chunk) > max_line_bytes:
                skipping, pending = True, b""
            elif not skipping:
                pending += chunk
            continue
        batch: list[tuple[int, Item]] = []
        first, tail = pieces[0], pieces[-1]
        line_no += 1
        if skipping or len(pending) + len(first) > max_line_bytes:
            batch.append((line_no, _too_long(max_line_bytes)))
        elif (line := pending + first).strip():
            batch.append((line_no, _decode_json(line)))
        for piece in pieces[1:-1]:
            line_no += 1
            if len(piece) > max_line_bytes:
                batch.append((line_no, _too_long(max_line_bytes)))
            elif piece.strip():
                batch.append((line_no, _decode_json(piece)))
        skipping = len(tail) > max_line_bytes
        pending = b"" if skipping else tail
        if batch:
            yield batch
    if skipping:
        yield [(line_no + 1, _too_long(max_line_bytes))]
    elif pending.strip():
        yield [(line_no + 1, _decode_json(pending))]


def _too_long(limit: int) -> LineError:
    return LineError("record", f"record exceeds {limit} bytes")


def _decode_json(line: bytes) -> Item:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return LineError("record", f"not valid JSON: {exc}")
    if not isinstance(value, dict):
        return LineError("record", "must be a JSON object")
    return value


async def _decoded_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[str]]:
    """The complete lines of each chunk received, as one list."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    pending = ""
    async for chunk in chunks:
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError:
            raise ApiError(
                422, "file is not valid UTF-8", errors=[{"field": "file", "message": "bad UTF-8"}]
            ) from None
        *lines, pending = pending.split("\n")
        if lines:
            yield [line + "\n" for line in lines]
    pending += decoder.decode(b"", final=True)
    if pending:
        yield [pending]


def _coerce(column: str, value: str) -> Any:
    if column in _INTEGER_COLUMNS:
        try:
            return int(value)
        except ValueError:
            return value  # left as text: validation names the field
    if column in _NUMBER_COLUMNS:
        try:
            return float(value)
        except ValueError:
            return value
    if column in _JSON_COLUMNS:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


async def read_csv(
    chunks: AsyncIterator[bytes], max_line_bytes: int
) -> AsyncIterator[list[tuple[int, Item]]]:
    """Rows of a CSV with a header; empty cells mean "absent"."""
    rows = _CsvRows(max_line_bytes)
    async for lines in _decoded_lines(chunks):
        if batch := rows.feed(lines):
            yield batch


class _CsvRows:
    """CSV lines to numbered rows; a quoted field may span lines."""

    def __init__(self, max_line_bytes: int) -> None:
        self.limit = max_line_bytes
        self.header: list[str] | None = None
        self.buffered: list[str] = []
        self.row_no = 0

    def feed(self, lines: list[str]) -> list[tuple[int, Item]]:
        out: list[tuple[int, Item]] = []
        # Usually each line is one record: then one reader parses them all at once.
        if self.header is not None and not self.buffered and max(map(len, lines)) <= self.limit:
            try:
                rows = list(csv.reader(lines, strict=True))
            except csv.Error:
                rows = []
            if len(rows) == len(lines):
                for row in rows:
                    self._row(row, out)
                return out
        for line in lines:
            self._line(line, out)
        return out

    def _line(self, line: str, out: list[tuple[int, Item]]) -> None:
        self.buffered.append(line)
        if sum(len(part) for part in self.buffered) > self.limit:
            self.buffered.clear()
            self.row_no += 1
            out.append((self.row_no, _too_long(self.limit)))
            return
        try:
            rows = list(csv.reader(self.buffered, strict=True))
        except csv.Error as exc:
            if any(sign in str(exc) for sign in _UNFINISHED):
                return  # a quoted field spans lines: read on
            self.buffered.clear()
            self.row_no += 1
            out.append((self.row_no, LineError("record", f"not valid CSV: {exc}")))
            return
        self.buffered.clear()
        for row in rows:
            self._row(row, out)

    def _row(self, row: list[str], out: list[tuple[int, Item]]) -> None:
        if self.header is None:
            self.header = [name.strip() for name in row]
            return
        if not any(cell.strip() for cell in row):
            return
        self.row_no += 1
        if len(row) != len(self.header):
            message = f"has {len(row)} cells, the header has {len(self.header)}"
            out.append((self.row_no, LineError("record", message)))
            return
        out.append(
            (self.row_no, {k: _coerce(k, v) for k, v in zip(self.header, row, strict=True) if v})
        )


Reader = Callable[[AsyncIterator[bytes], int], AsyncIterator[list[tuple[int, Item]]]]


def reader_for(kind: RecordKind, content_type: str, filename: str | None) -> Reader:
    """JSONL for every kind; CSV for the flat ones (orders and transcripts nest)."""
    media = content_type.split(";")[0].strip().lower()
    name = (filename or "").lower()
    is_csv = media in {"text/csv", "application/csv"} or name.endswith(".csv")
    if not is_csv:
        return read_jsonl
    if kind not in CSV_KINDS:
        raise ApiError(
            415,
            f"{kind.value} nest lists and are imported as JSONL only",
            errors=[{"field": "content-type", "message": "use application/x-ndjson"}],
        )
    return read_csv
