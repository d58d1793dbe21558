"""Bulk writes of per-customer numbers: numpy columns into Postgres by binary COPY.

A training run writes a row for every customer several times (scores, anomaly ranks,
memberships). Sent as array parameters, a million values each are formatted and parsed
one by one; in binary COPY format every row of fixed-size columns has the same layout,
so numpy lays out the whole block at once. The rows land in a temporary table that the
caller merges with one set-based statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import psycopg
from numpy.typing import NDArray
from sqlmodel import Session

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")  # flags, extension
_TRAILER = (-1).to_bytes(2, "big", signed=True)
# numpy kind -> (Postgres type, big-endian element type); NaN travels as a float8 NaN.
_TYPES = {"i": ("bigint", ">i8"), "u": ("bigint", ">i8"), "f": ("float8", ">f8")}
_ROWS_PER_WRITE = 200_000


def copy_temp_table(session: Session, name: str, columns: Mapping[str, NDArray[Any]]) -> int:
    """Create the temporary table ``name`` (dropped at commit, or by the next call with
    the same name) with one column per entry of
    ``columns`` (integers as bigint, floats as float8) and fill it; the rows written.

    ``name`` and the column names are the caller's identifiers, never user input.
    """
    arrays = [np.asarray(values) for values in columns.values()]
    count = len(arrays[0]) if arrays else 0
    if any(a.ndim != 1 or len(a) != count for a in arrays):
        raise ValueError("columns must be one-dimensional and of one length")
    types = [_TYPES[a.dtype.kind] for a in arrays]
    fields: list[tuple[str, str]] = [("fields", ">i2")]
    for i, (_, element) in enumerate(types):
        fields += [(f"length{i}", ">i4"), (f"value{i}", element)]
    rows = np.empty(count, dtype=np.dtype(fields))
    rows["fields"] = len(arrays)
    for i, array in enumerate(arrays):
        rows[f"length{i}"] = 8
        rows[f"value{i}"] = array
    definition = ", ".join(f"{c} {t}" for c, (t, _) in zip(columns, types, strict=True))
    session.flush()
    connection = cast(psycopg.Connection[Any], session.connection().connection.driver_connection)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
        cursor.execute(f"CREATE TEMP TABLE {name} ({definition}) ON COMMIT DROP")
        with cursor.copy(f"COPY {name} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_HEADER)
            for start in range(0, count, _ROWS_PER_WRITE):
                copy.write(rows[start : start + _ROWS_PER_WRITE].tobytes())
            copy.write(_TRAILER)
        cursor.execute(f"ANALYZE {name}")
    return count
