"""Loading a tenant's stored feature vectors into numpy, fast enough for millions of rows.

The rows travel as binary COPY: every row of one feature set has the same byte layout
(two int8 columns and a one-dimensional float8 array of fixed length), so numpy reads a
whole block of rows with one structured dtype instead of parsing values one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql
from sqlmodel import Session

from services.segment.bulk import SIGNATURE as _SIGNATURE
from services.segment.features.registry import DEFAULT_FEATURE_SET, get_feature_set
from services.segment.features.sql import vectors_sql

_TRAILER = b"\xff\xff"
_FLOAT8_OID = 701
_POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class FeatureMatrix:
    """Feature vectors of one tenant, one row per customer, sorted by ``customer_pk``.

    ``as_of`` is the oldest cut-off among the rows (every row saw the data up to then),
    ``latest_as_of`` the newest (customers refreshed since); both None without rows.
    Rows holding another number of values than the set has names are left out.
    """

    feature_set: str
    names: list[str]
    customer_pks: NDArray[np.int64]
    values: NDArray[np.float64]
    as_of: datetime | None
    latest_as_of: datetime | None

    def __len__(self) -> int:
        return len(self.customer_pks)


def load_matrix(
    session: Session, *, tenant_id: int, feature_set: str = DEFAULT_FEATURE_SET
) -> FeatureMatrix:
    definition = get_feature_set(feature_set)
    width = len(definition.names)
    vectors = vectors_sql(definition, where=f"f.tenant_id = {int(tenant_id)}")
    query = sql.SQL(f"COPY ({vectors}) TO STDOUT (FORMAT BINARY)")
    session.flush()
    connection = cast(psycopg.Connection[Any], session.connection().connection.driver_connection)
    with connection.cursor() as cursor, cursor.copy(query) as copy:
        pks, stamps, values = _parse(copy, width)
    order = np.argsort(pks, kind="stable")
    return FeatureMatrix(
        feature_set=definition.name,
        names=definition.names,
        customer_pks=pks[order],
        values=values[order],
        as_of=_timestamp(stamps.min()) if len(stamps) else None,
        latest_as_of=_timestamp(stamps.max()) if len(stamps) else None,
    )


def _row_dtype(width: int) -> np.dtype[Any]:
    element = np.dtype([("length", ">i4"), ("value", ">f8")])
    return np.dtype(
        [
            ("fields", ">i2"),
            ("pk_length", ">i4"),
            ("pk", ">i8"),
            ("as_of_length", ">i4"),
            ("as_of", ">i8"),
            ("array_length", ">i4"),
            ("ndim", ">i4"),
            ("has_nulls", ">i4"),
            ("element_oid", ">i4"),
            ("dim", ">i4"),
            ("lower_bound", ">i4"),
            ("elements", element, (width,)),
        ]
    )


def _parse(
    blocks: Iterable[Any], width: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """customer_pks, as_of (microseconds since 2000-01-01 UTC) and values of the rows."""
    dtype = _row_dtype(width)
    parts: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
    buffer = bytearray()
    started = False
    for block in blocks:
        buffer += block
        if not started and len(buffer) >= len(_SIGNATURE) + 8:
            buffer = buffer[_header_length(buffer) :]
            started = True
        if started and len(buffer) >= _CHUNK_BYTES:
            parts.append(_rows(buffer, dtype, width))
    if not started:
        raise ValueError("COPY answer without a binary header")
    parts.append(_rows(buffer, dtype, width))
    if bytes(buffer) != _TRAILER:
        raise ValueError("COPY answer ends in a partial row: rows differ in layout")
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]).reshape(-1, width),
    )


def _header_length(buffer: bytearray) -> int:
    if not buffer.startswith(_SIGNATURE):
        raise ValueError("not a binary COPY answer")
    extension = int.from_bytes(buffer[len(_SIGNATURE) + 4 : len(_SIGNATURE) + 8], "big")
    return len(_SIGNATURE) + 8 + extension


def _rows(
    buffer: bytearray, dtype: np.dtype[Any], width: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Decode the whole rows at the start of ``buffer`` and remove them from it."""
    count = len(buffer) // dtype.itemsize  # the 2-byte trailer never makes a row
    rows = np.frombuffer(buffer, dtype=dtype, count=count)
    _check(rows, width)
    decoded = (
        rows["pk"].astype(np.int64),
        rows["as_of"].astype(np.int64),
        rows["elements"]["value"].astype(np.float64),
    )
    del rows  # release the view before the buffer shrinks
    del buffer[: count * dtype.itemsize]
    return decoded


def _check(rows: NDArray[Any], width: int) -> None:
    expected = {
        "fields": 3,
        "pk_length": 8,
        "as_of_length": 8,
        "array_length": 20 + 12 * width,
        "ndim": 1,
        "has_nulls": 0,
        "element_oid": _FLOAT8_OID,
        "dim": width,
    }
    # A NULL element would shorten its row and put every later field out of step, so
    # checking the headers (has_nulls above all) covers the elements as well.
    for name, value in expected.items():
        if np.any(rows[name] != value):
            raise ValueError(f"unexpected row layout in COPY answer: {name} != {value}")


def _timestamp(microseconds: np.int64) -> datetime:
    return _POSTGRES_EPOCH + timedelta(microseconds=int(microseconds))
