"""Times in request bodies: ISO 8601 text with its zone, and nothing else.

Pydantic would also read a bare number as seconds since 1970 and a time without a zone
as local time; a storefront sending either made a mistake that must be a 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time with its zone, e.g. 2026-03-01T09:00:00Z")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_text)]
