"""Decision logs that analysts bring as CSV: ``action, reward, logging_propensity,
target_probability`` and optional context columns (``segmenta personalize ope``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from services.personalize.modeling.ope import DecisionLog

REQUIRED = ("action", "reward", "logging_propensity", "target_probability")


def read_log(path: Path, context: list[str] | None) -> tuple[DecisionLog, np.ndarray | None]:
    """The log and its context matrix (``context`` columns; None: every other column)."""
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        header = [name.strip() for name in reader.fieldnames or []]
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    for name in (*REQUIRED, *(context or [])):
        if name not in header:
            raise ValueError(f"column {name!r} is missing (the header has: {', '.join(header)})")
    if not rows:
        raise ValueError("the log has no rows")
    extra = [name for name in header if name not in REQUIRED] if context is None else context
    log = DecisionLog.from_arrays(
        [row["action"] for row in rows], *(_column(rows, name) for name in REQUIRED[1:])
    )
    features = np.column_stack([_column(rows, name) for name in extra]) if extra else None
    return log, features


def _column(rows: list[dict[str, str]], name: str) -> list[float]:
    values = []
    for line, row in enumerate(rows, start=2):
        try:
            value = float(row.get(name, ""))
        except ValueError:
            raise ValueError(f"column {name!r}, line {line}: not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"column {name!r}, line {line}: not a finite number")
        values.append(value)
    return values
