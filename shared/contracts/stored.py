"""Reading JSON that one service stored for another, through its contract.

A stored shape that does not match its contract is a bug in a writer (or a row older
than every reader knows): it fails here with one message that says which row, which
column and which fields, instead of a KeyError deep inside a reader. The message never
quotes the stored values (they may be about a customer).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class StoredShapeError(ValueError):
    """A stored JSON document does not have the shape its contract promises."""


def read_stored(contract: type[Model], stored: object, *, where: str) -> Model:
    """``stored`` (a decoded JSON column) as ``contract``; ``where`` names the row."""
    try:
        return contract.model_validate(stored)
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(document)'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        raise StoredShapeError(f"{where} is not a {contract.__name__}: {fields}") from None
