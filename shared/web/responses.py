"""The project's one error shape, for the OpenAPI documents of every API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    detail: str
    errors: list[FieldError] = Field(default_factory=list)


_ERROR_TEXT: Final = {
    401: "Missing, unknown or revoked API key",
    403: "The key lacks the scope for this operation",
    404: "Not found for this key's tenant",
    409: "The request conflicts with the current state",
    413: "Request body too large",
    422: "Invalid input; `errors` names the fields",
    429: "Rate limit exceeded; see `Retry-After`",
    503: "A backing service is unavailable; retry",
}


def error_responses(
    *extra: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the error answers a route may give (``descriptions`` says
    what a code means for this service, where it says more than the default)."""
    text = {**_ERROR_TEXT, **(descriptions or {})}
    codes = sorted({401, 403, 422, 429, 503, *extra})
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}


def json_error_responses(
    *extra: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """``error_responses`` for a route whose own answer is not JSON (an HTML page): its
    errors are still the JSON ``ErrorResponse``, which a ``model`` would put under the
    route's media type instead."""
    schema = {"$ref": "#/components/schemas/ErrorResponse"}
    return {
        code: {
            "description": answer["description"],
            "content": {"application/json": {"schema": schema}},
        }
        for code, answer in error_responses(*extra, descriptions=descriptions).items()
    }
