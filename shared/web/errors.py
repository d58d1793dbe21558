"""Client errors as clear 4xx answers, and infrastructure trouble as a fast 503."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shared.db import is_connectivity_error

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


def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        {"detail": exc.detail, "errors": exc.errors},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0]),
            "message": err["msg"],
        }
        for err in exc.errors()
    ]
    return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)


def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    # Only connectivity trouble lands here; a bug in our SQL must stay a loud 500.
    log.warning("dependency unavailable: %s", type(exc).__name__)
    return JSONResponse(
        {"detail": "a backing service is unavailable; retry later", "errors": []},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if is_connectivity_error(exc):
        return _unavailable(request, exc)
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PoolTimeoutError, _unavailable)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(RedisError, _unavailable)
