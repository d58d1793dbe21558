"""Times a request gives as text: ISO 8601 only.

Pydantic would also read a number (or a query value such as ``0.5``) as seconds since
1970; a client sending one made a mistake that must be a 422, as the documents' ``date-time``
format says.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

_MESSAGE = "must be an ISO 8601 date-time, e.g. 2026-03-01T09:00:00Z"


def _iso_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(_MESSAGE)
    try:
        float(value)
    except ValueError:
        return value
    raise ValueError(_MESSAGE)


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_text)]
