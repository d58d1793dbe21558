"""``POST /v1/{kind}``: one record or a batch of up to 2,500, answered after commit."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Engine

from services.ingest.metrics import count_records
from services.ingest.records.schemas import (
    RECORD_MODELS,
    ErrorResponse,
    IngestResult,
    Record,
    RecordKind,
    example_of,
)
from services.ingest.records.service import StoreOutcome, store_records
from services.ingest.records.validation import parse_json, validate_batch
from services.ingest.transactions import run_in_transaction
from shared.auth import Principal, Scope
from shared.web.body import read_capped_body
from shared.web.deps import DatabaseDep, SettingsDep, require
from shared.web.errors import ApiError

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        401: "Missing, unknown or revoked API key",
        403: "The key lacks the scope",
        413: "Body, batch or a record is over its size limit",
        415: "The body is not sent as JSON",
        422: "Invalid JSON or no valid record; `errors` names the fields",
        429: "Rate limit exceeded; see `Retry-After`",
        503: "Postgres or Redis unavailable; retry",
    }.items()
}


def request_body_schema(kind: RecordKind, model: type[Record], max_items: int) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    example = example_of(model)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            ref,
                            {"type": "array", "items": ref, "minItems": 1, "maxItems": max_items},
                        ]
                    },
                    "examples": {
                        "one": {"summary": f"One {kind.value[:-1]}", "value": example},
                        "batch": {"summary": "A batch", "value": [example]},
                    },
                }
            },
        }
    }


def require_json(request: Request) -> None:
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            415,
            f"send JSON (Content-Type: application/json), not {media or 'an empty type'}",
            errors=[{"field": "content-type", "message": "must be application/json"}],
        )


def _store(
    engine: Engine, principal: Principal, kind: RecordKind, records: list[Record], secret: str
) -> StoreOutcome:
    return run_in_transaction(
        engine,
        lambda session: store_records(
            session, tenant_id=principal.tenant_id, kind=kind, records=records, secret=secret
        ),
    )


def make_endpoint(kind: RecordKind, *scopes: Scope) -> Callable[..., Awaitable[IngestResult]]:
    async def create_records(
        request: Request,
        principal: Annotated[Principal, Depends(require(*scopes))],
        settings: SettingsDep,
        database: DatabaseDep,
    ) -> IngestResult:
        require_json(request)
        body = await read_capped_body(request, settings.max_body_bytes)
        batch = validate_batch(kind, parse_json(body), settings)
        secret = settings.secret_key.get_secret_value()
        outcome = await database.run(
            _store, database.engine, principal, kind, batch.records, secret
        )
        count_records(
            kind.value,
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            suppressed=outcome.suppressed,
            rejected=len(batch.rejected),
        )
        return IngestResult(
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            suppressed=outcome.suppressed,
            rejected=batch.rejected,
            rejected_count=len(batch.rejected),
        )

    create_records.__name__ = f"create_{kind.value}"
    return create_records


def build_router(max_items: int) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["records"])
    for kind, model in RECORD_MODELS.items():
        scopes = (
            (Scope.INGEST_WRITE, Scope.TRANSCRIPTS_WRITE)
            if kind is RecordKind.TRANSCRIPTS
            else (Scope.INGEST_WRITE,)
        )
        router.add_api_route(
            f"/{kind.value}",
            make_endpoint(kind, *scopes),
            methods=["POST"],
            response_model=IngestResult,
            summary=f"Ingest {kind.value}",
            description=(
                f"Send one {kind.value[:-1]} record or a JSON array of up to {max_items}. "
                "Valid records are stored (de-duplicated by id) and the answer, given after "
                "commit, says how many were accepted, duplicates or suppressed, and which "
                "indexes were rejected and why."
            ),
            responses=ERROR_RESPONSES,
            openapi_extra=request_body_schema(kind, model, max_items),
        )
    return router
