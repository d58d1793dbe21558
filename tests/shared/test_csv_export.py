"""Cells of CSV exports: what a spreadsheet would run as a formula is made plain text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from shared.web.csv_export import csv_bytes, safe_cell

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "\uff1d1", "\uff20A1"],
)
def test_text_that_starts_a_formula_is_written_behind_a_quote(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("c-1", "c-1"),
        ("a=b", "a=b"),
        (None, ""),
        (True, "true"),
        (-1.5, "-1.5"),
        (3, "3"),
        (datetime(2026, 1, 2, tzinfo=UTC), "2026-01-02T00:00:00+00:00"),
    ],
)
def test_other_values_are_written_as_they_are(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_quoting_keeps_separators_and_line_breaks_inside_their_cell() -> None:
    data = csv_bytes([["a,b", 'say "hi"', "two\nlines"]]).decode()
    assert list(csv.reader(io.StringIO(data))) == [["a,b", 'say "hi"', "two\nlines"]]
