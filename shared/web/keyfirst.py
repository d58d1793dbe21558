"""A body that is not JSON at all is refused only once the key is known to be good; and
FastAPI's own HTTP errors in the project's shape.

FastAPI decodes a route's JSON body before it solves the route's dependencies (the key
check among them), so malformed JSON without a key was answered 422 (and a body that is
not UTF-8, 400), telling an unauthenticated caller about the route's input. Here such an
answer becomes the 401 (or 429) the key would have got; a caller with a valid key gets a
422 naming the body. Bodies that are JSON are validated after the dependencies, as
FastAPI does anyway.

FastAPI's other errors (404 for an unknown path, 405) keep their status in the project's
body (``detail`` and ``errors``); a 405's ``Allow`` lists every method the OpenAPI
document has for the path, not only those of the route that happened to match.
"""

from __future__ import annotations

import re
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.auth import Principal
from shared.web.deps import CachedAuthenticator, bearer_credentials, source_of
from shared.web.errors import ApiError, error_response, validation_error
from shared.web.keygate import unauthorized

# What FastAPI raises (400) when a JSON body cannot even be decoded (not UTF-8).
FASTAPI_PARSE_ERROR: Final = "There was an error parsing the body"


def _decoded_before_dependencies(exc: RequestValidationError) -> bool:
    return any(error.get("type") == "json_invalid" for error in exc.errors())


async def _refused_key(request: Request) -> JSONResponse | None:
    """The answer to the request's key if it is not a valid one, else None."""
    authenticator: CachedAuthenticator | None = getattr(request.app.state, "authenticator", None)
    if authenticator is None:
        return None
    token = bearer_credentials(request.headers.get("authorization", ""))
    try:
        principal: Principal | None = (
            await authenticator.authenticate(token, source_of(request)) if token else None
        )
    except ApiError as refused:
        return _answer(refused)
    return _answer(unauthorized()) if principal is None else None


async def _key_first(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if _decoded_before_dependencies(exc) and (refused := await _refused_key(request)):
        return refused
    return validation_error(request, exc)


def _documented_methods(request: Request) -> list[str]:
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    document: dict[str, Any] = request.app.openapi()
    methods: set[str] = set()  # every template the path fits: some share their URLs
    for template, operations in document.get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods.update(method.upper() for method in operations)
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_PARSE_ERROR:
        if refused := await _refused_key(request):
            return refused
        error = {"field": "body", "message": "not a JSON document in UTF-8"}
        return _answer(ApiError(422, "invalid request", errors=[error]))
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (methods := _documented_methods(request)):
        headers["Allow"] = ", ".join(methods)
    return JSONResponse(
        {"detail": str(exc.detail), "errors": []}, status_code=exc.status_code, headers=headers
    )


def _answer(error: ApiError) -> JSONResponse:
    response = error_response(error)
    assert response is not None  # every ApiError has its answer
    return response


def install_key_first(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _key_first)
    app.add_exception_handler(StarletteHTTPException, _http_error)
