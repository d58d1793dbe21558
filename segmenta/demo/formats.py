"""How the demo data writes times and JSON records (the ingest contract's forms)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def iso_time(seconds: float) -> str:
    """A POSIX time as ISO 8601 in UTC, to the second: ``2026-11-01T00:00:00Z``."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_json(record: Mapping[str, Any]) -> str:
    """One record as a JSON Lines line (without its newline)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
