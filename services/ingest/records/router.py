"""``POST /v1/{kind}``: one record or a batch of up to 2,500, answered after commit."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.datastructures import State

from services.ingest.metrics import count_records
from services.ingest.records.batcher import GroupCommitter, KeyRevokedError, Submitted
from services.ingest.records.schemas import (
    RECORD_MODELS,
    ErrorResponse,
    IngestResult,
    Record,
    RecordKind,
    example_of,
)
from services.ingest.records.service import (
    RECORD_ID_FIELDS,
    Outcome,
    StoreOutcome,
    store_records,
)
from services.ingest.records.validation import parse_json, validate_batch
from services.ingest.transactions import run_in_transaction
from shared.auth import Principal, Scope, active_key_ids
from shared.settings import Settings
from shared.web.body import read_capped
from shared.web.deps import BEARER_SECURITY, Database, require
from shared.web.errors import ApiError
from shared.web.keygate import unauthorized

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


def require_json(content_type: str | None) -> None:
    """Refuses (415) a ``Content-Type`` that is not JSON; none at all is taken as JSON."""
    media = (content_type if content_type is not None else "application/json").split(";")[0]
    media = media.strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            415,
            f"send JSON (Content-Type: application/json), not {media or 'an empty type'}",
            errors=[{"field": "content-type", "message": "must be application/json"}],
        )


def _store(
    engine: Engine, principal: Principal, kind: RecordKind, records: list[Record], secret: str
) -> StoreOutcome | None:
    """Store in one transaction; None if the key was revoked since it was authenticated."""

    def work(session: Session) -> StoreOutcome | None:
        if principal.key_id not in active_key_ids(session, [principal.key_id]):
            return None
        return store_records(
            session, tenant_id=principal.tenant_id, kind=kind, records=records, secret=secret
        )

    return run_in_transaction(engine, work)


async def _store_one(
    state: State, principal: Principal, kind: RecordKind, record: Record
) -> StoreOutcome | None:
    committer: GroupCommitter = state.group_committer
    submitted = Submitted(principal.key_id, principal.tenant_id, kind, record)
    try:
        outcome = await committer.store(submitted)
    except KeyRevokedError:
        return None
    return StoreOutcome(
        accepted=int(outcome is Outcome.ACCEPTED),
        duplicates=int(outcome is Outcome.DUPLICATE),
        suppressed=int(outcome is Outcome.SUPPRESSED),
    )


def record_scopes(kind: RecordKind) -> tuple[Scope, ...]:
    """The scopes that may send records of ``kind`` (any one of them, or admin)."""
    if kind is RecordKind.TRANSCRIPTS:
        return (Scope.INGEST_WRITE, Scope.TRANSCRIPTS_WRITE)
    return (Scope.INGEST_WRITE,)


async def create_records(
    state: State,
    principal: Principal,
    kind: RecordKind,
    *,
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
) -> Response:
    """What ``POST /v1/{kind}`` does once the caller is known, for the route and for
    ``RecordFastPath`` alike; client errors are raised as ``ApiError``."""
    settings: Settings = state.settings
    database: Database = state.database
    require_json(content_type)
    raw = await read_capped(body, content_length, settings.max_body_bytes)
    batch = validate_batch(kind, parse_json(raw), settings)
    if len(batch.records) == 1 and not batch.rejected and kind in RECORD_ID_FIELDS:
        outcome = await _store_one(state, principal, kind, batch.records[0])
    else:
        secret = settings.secret_key.get_secret_value()
        outcome = await database.run(
            _store, database.engine, principal, kind, batch.records, secret
        )
    if outcome is None:
        state.authenticator.cache.forget(principal.key_id)
        raise unauthorized()
    count_records(
        kind.value,
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        suppressed=outcome.suppressed,
        rejected=len(batch.rejected),
    )
    result = IngestResult(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        suppressed=outcome.suppressed,
        rejected=batch.rejected,
        rejected_count=len(batch.rejected),
    )
    # Answered as is: the model is already valid, and validating it again costs time.
    return Response(result.model_dump_json(), media_type="application/json")


def make_endpoint(kind: RecordKind) -> Callable[..., Awaitable[Response]]:
    async def endpoint(
        request: Request,
        principal: Annotated[Principal, Depends(require(*record_scopes(kind), cached=True))],
    ) -> Response:
        headers = request.headers
        return await create_records(
            request.app.state,
            principal,
            kind,
            content_type=headers.get("content-type"),
            content_length=headers.get("content-length"),
            body=request.stream(),
        )

    endpoint.__name__ = f"create_{kind.value}"
    return endpoint


def add_record_routes(router: APIRouter, max_items: int) -> None:
    """``POST /v1/{kind}`` on ``router`` itself: give it the app's own router, ahead of
    the rest, because an included router costs the hot path a second route match."""
    for kind, model in RECORD_MODELS.items():
        router.add_api_route(
            f"/v1/{kind.value}",
            make_endpoint(kind),
            methods=["POST"],
            tags=["records"],
            response_model=IngestResult,
            summary=f"Ingest {kind.value}",
            description=(
                f"Send one {kind.value[:-1]} record or a JSON array of up to {max_items}. "
                "Valid records are stored (de-duplicated by id) and the answer, given after "
                "commit, says how many were accepted, duplicates or suppressed, and which "
                "indexes were rejected and why."
            ),
            responses=ERROR_RESPONSES,
            openapi_extra={
                **request_body_schema(kind, model, max_items),
                "security": BEARER_SECURITY,
            },
        )
