"""The OpenAPI document shows the project's error body for 422, not FastAPI's default.

FastAPI documents a 422 of its own shape (``HTTPValidationError``: ``detail`` as a list)
for every route with parameters that does not declare one; the APIs answer every 422 in
the project's shape (``ErrorResponse``: ``detail`` and ``errors`` naming the fields).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

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


def install_project_error_bodies(app: FastAPI) -> None:
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = project_error_bodies(default())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
