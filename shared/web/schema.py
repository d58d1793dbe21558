"""What a validator checks, said in the OpenAPI document too.

An ``AfterValidator`` is invisible to JSON Schema: without a note the documents promise
more than the APIs take (any string where NUL is refused, any date-time where only years
1900-2200 are), and a client generated from them, or a fuzzer, learns it by a 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, GetJsonSchemaHandler, Strict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# No NUL anywhere (Postgres text cannot hold it).
NO_NUL_PATTERN = "^[^\\u0000]*$"


@dataclass(frozen=True)
class Documented:
    """``Annotated`` metadata: JSON Schema keywords added to the type's own schema."""

    keywords: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, **keywords: Any) -> Documented:
        return cls(tuple(keywords.items()))

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.keywords)
        return schema


NO_NUL = Documented.of(pattern=NO_NUL_PATTERN)


def _iso_text(value: Any) -> Any:
    # JSON has no date-time: text only, not a number read as epoch seconds.
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO-8601 date-time string")
    return value


# A date-time in a request body: ISO-8601 text only (pydantic's lax mode also takes numbers).
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text)]
IsoAwareDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
# A number in a request body: not text, nor true/false.
StrictNumber = Annotated[float, Strict()]
