"""Client errors as clear 4xx answers, and infrastructure trouble as a fast 503."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException

from shared.cursors import CursorDoesNotExist
from shared.db import is_connectivity_error
from shared.runs import RunFinished

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer to the client: status, a message, and the fields at fault."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.errors = errors or []
        self.headers = headers


class BodyTooLarge(HTTPException):
    """A body found over ``limit`` while it is read. An ``HTTPException``, because FastAPI
    answers any other error raised by reading the body as a 400 ("error parsing the body")."""

    def __init__(self, limit: int) -> None:
        super().__init__(413)
        self.limit = limit


def body_too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"request body is larger than {limit} bytes",
        errors=[{"field": "body", "message": f"exceeds {limit} bytes"}],
    )


def run_finished(exc: RunFinished) -> ApiError:
    """The answer to cancelling a finished run, of any kind: 409 naming its status."""
    return ApiError(409, str(exc), errors=[{"field": "status", "message": str(exc.status)}])


def _api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        {"detail": exc.detail, "errors": exc.errors},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(err), "message": err["msg"]} for err in exc.errors()]
    return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)


def _field(err: Any) -> str:
    """The field an error names: its path inside the body (or query, path, header). A body
    that is not JSON is the ``body``: its ``loc`` ends in the byte offset, not a field."""
    loc = err["loc"]
    if err.get("type") == "json_invalid":
        return str(loc[0])
    return ".".join(str(p) for p in loc[1:]) or str(loc[0])


def _unavailable_response(exc: Exception) -> JSONResponse:
    log.warning("dependency unavailable: %s", type(exc).__name__)
    return JSONResponse(
        {"detail": "a backing service is unavailable; retry later", "errors": []},
        status_code=503,
        headers={"Retry-After": "5"},
    )


_UNAVAILABLE = (PoolTimeoutError, OperationalError, RedisError)


def error_response(exc: Exception) -> JSONResponse | None:
    """The answer to ``exc``, for the app's handlers and for code that answers without
    them; None for anything else, which must stay a loud 500 (a bug in our SQL, say)."""
    if isinstance(exc, ApiError):
        return _api_error_response(exc)
    if isinstance(exc, BodyTooLarge):
        return _api_error_response(body_too_large(exc.limit))
    if isinstance(exc, CursorDoesNotExist):
        errors = [{"field": exc.field, "message": "not a `next` cursor of this list"}]
        return _api_error_response(ApiError(422, str(exc), errors=errors))
    if isinstance(exc, _UNAVAILABLE) or (
        isinstance(exc, DBAPIError) and is_connectivity_error(exc)
    ):
        return _unavailable_response(exc)
    return None


def _handle(_: Request, exc: Exception) -> JSONResponse:
    response = error_response(exc)
    if response is None:
        raise exc
    return response


def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    # Starlette answers with this, then re-raises for the server to log. The server closes
    # the connection after an error; saying so lets a keep-alive client know it must not
    # reuse it (it would otherwise find it closed under its next request).
    return JSONResponse(
        {"detail": "internal error", "errors": []},
        status_code=500,
        headers={"Connection": "close"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for error in (ApiError, BodyTooLarge, CursorDoesNotExist, DBAPIError, *_UNAVAILABLE):
        app.add_exception_handler(error, _handle)
