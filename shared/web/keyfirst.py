"""A body that is not JSON at all is refused only once the key is known to be good.

FastAPI decodes a route's JSON body before it solves the route's dependencies (the key
check among them), so malformed JSON without a key was answered 422, telling an
unauthenticated caller about the route's input. Here such a 422 is turned into the 401 (or
429) the key would have got; a caller with a valid key still gets the 422. Bodies that
are JSON are validated after the dependencies, as FastAPI does anyway.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.auth import Principal
from shared.web.deps import CachedAuthenticator, bearer_credentials, source_of
from shared.web.errors import ApiError, error_response, validation_error
from shared.web.keygate import unauthorized


def _decoded_before_dependencies(exc: RequestValidationError) -> bool:
    return any(error.get("type") == "json_invalid" for error in exc.errors())


async def _key_first(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    authenticator: CachedAuthenticator | None = getattr(request.app.state, "authenticator", None)
    if authenticator is not None and _decoded_before_dependencies(exc):
        token = bearer_credentials(request.headers.get("authorization", ""))
        try:
            principal: Principal | None = (
                await authenticator.authenticate(token, source_of(request)) if token else None
            )
        except ApiError as refused:
            return _answer(refused)
        if principal is None:
            return _answer(unauthorized())
    return validation_error(request, exc)


def _answer(error: ApiError) -> JSONResponse:
    response = error_response(error)
    assert response is not None  # every ApiError has its answer
    return response


def install_key_first(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _key_first)
