"""``POST /v1/feedback``: what customers did with the offers they were shown."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from redis import Redis
from sqlalchemy import Engine

from services.personalize.feedback.schemas import FeedbackIn, FeedbackResult, RejectedFeedback
from services.personalize.feedback.service import record_feedback
from shared.auth import Principal, Scope
from shared.db import session_scope
from shared.web.body import read_capped
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError
from shared.web.responses import FieldError, error_responses

router = APIRouter(prefix="/v1", tags=["storefront"])
FeedbackDep = Annotated[Principal, Depends(require(Scope.FEEDBACK_WRITE))]
MAX_EVENTS = 2_500
MAX_BODY_BYTES = 750_000  # 2,500 events of ~300 bytes
_EVENT_SCHEMA = FeedbackIn.model_json_schema()


def _items(body: bytes) -> list[Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        errors = [{"field": "body", "message": f"not valid JSON: {exc}"}]
        raise ApiError(422, "invalid request", errors=errors) from None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise ApiError(422, "invalid request", errors=[{"field": "body", "message": "empty"}])
    if len(items) > MAX_EVENTS:
        errors = [{"field": "body", "message": f"more than {MAX_EVENTS} events"}]
        raise ApiError(413, "too many events", errors=errors)
    return items


def _validate(items: list[Any]) -> tuple[list[tuple[int, FeedbackIn]], list[RejectedFeedback]]:
    valid, rejected = [], []
    for index, item in enumerate(items):
        try:
            valid.append((index, FeedbackIn.model_validate(item)))
        except ValidationError as exc:
            errors = [
                FieldError(field=".".join(str(p) for p in e["loc"]) or "body", message=e["msg"])
                for e in exc.errors()
            ]
            rejected.append(RejectedFeedback(index=index, errors=errors))
    return valid, rejected


def _none_valid(rejected: list[RejectedFeedback], *, single: bool) -> ApiError:
    """Nothing to store: a 422 naming the fields, as ingest answers (a batch's by index)."""
    errors = [
        {"field": e.field if single else f"{r.index}.{e.field}", "message": e.message}
        for r in rejected[:50]
        for e in r.errors
    ]
    return ApiError(422, "no feedback event is valid", errors=errors)


def _store(
    engine: Engine, redis: Redis, tenant_id: int, events: list[tuple[int, FeedbackIn]]
) -> FeedbackResult:
    with session_scope(engine) as session:
        return record_feedback(session, redis, tenant_id=tenant_id, events=events).result


@router.post(
    "/feedback",
    summary="Report impressions, clicks, conversions and dismissals",
    description="One event or an array of up to 2,500, each naming the decision and the "
    "offer it is about. Stored once per `event_id` (a replay counts as a duplicate); an "
    "event that is malformed, names an unknown decision, or an offer the decision did not "
    "show, is listed in `rejected` with the field (422 when no event of the request is "
    "well-formed); the policy learns from what was stored within seconds. "
    "Needs `feedback:write`.",
    response_model=FeedbackResult,
    responses=error_responses(413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _EVENT_SCHEMA,
                            {"type": "array", "items": _EVENT_SCHEMA, "maxItems": MAX_EVENTS},
                        ]
                    }
                }
            },
        }
    },
)
async def create_feedback(
    request: Request, principal: FeedbackDep, database: DatabaseDep
) -> FeedbackResult:
    body = await read_capped(
        request.stream(), request.headers.get("content-length"), MAX_BODY_BYTES
    )
    items = _items(body)
    valid, rejected = _validate(items)
    if rejected and not valid:
        raise _none_valid(rejected, single=len(items) == 1)
    result = FeedbackResult()
    if valid:
        redis: Redis = request.app.state.sync_redis
        result = await database.run(_store, database.engine, redis, principal.tenant_id, valid)
    result.rejected = sorted([*result.rejected, *rejected], key=lambda r: r.index)
    result.rejected_count = len(result.rejected)
    return result
