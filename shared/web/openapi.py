"""What the OpenAPI documents add to FastAPI's: the project's error body, and the scopes.

- FastAPI documents a 422 of its own shape (``HTTPValidationError``: ``detail`` as a list)
  for every route with parameters that does not declare one; the APIs answer every 422 in
  the project's shape (``ErrorResponse``: ``detail`` and ``errors`` naming the fields).
- Each operation that needs a key says which scopes may call it, in
  ``x-required-scopes`` (``admin`` may call them all), taken from its ``require(...)``
  dependency: the tests' scope matrix and tenant isolation are generated from it, so a
  route cannot be left out of them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from shared.web.responses import ErrorResponse

_DEFAULT_REF = "#/components/schemas/HTTPValidationError"
_OURS_REF = "#/components/schemas/ErrorResponse"
_DEFAULT_SCHEMAS = ("HTTPValidationError", "ValidationError")


def project_error_bodies(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            answer = operation.get("responses", {}).get("422")
            schema = (answer or {}).get("content", {}).get("application/json", {}).get("schema")
            if schema and schema.get("$ref") == _DEFAULT_REF:
                schema["$ref"] = _OURS_REF
                answer["description"] = "Invalid input; `errors` names the fields"
    ours = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in ours.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault("ErrorResponse", ours)
    for name in _DEFAULT_SCHEMAS:
        schemas.pop(name, None)
    return document


def _scopes(dependant: Dependant) -> tuple[str, ...] | None:
    found: tuple[str, ...] | None = getattr(dependant.call, "required_scopes", None)
    for child in dependant.dependencies:
        found = found or _scopes(child)
    return found


def document_scopes(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """``x-required-scopes`` on every operation whose route ``require``s a key."""
    # Route contexts, as FastAPI's own document is made: an included router's routes
    # carry the router's prefix and dependencies there.
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        scopes = _scopes(context.dependant)
        operations = document.get("paths", {}).get(context.path_format, {})
        for method in context.methods or ():
            operation = operations.get(method.lower())
            if scopes and operation is not None:
                operation["x-required-scopes"] = list(scopes)
    return document


def finish_document(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    return document_scopes(app, project_error_bodies(document))


def install_project_error_bodies(app: FastAPI) -> None:
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish_document(app, default())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
