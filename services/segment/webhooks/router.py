"""``/v1/webhooks``: an admin subscribes a URL to membership changes of chosen segments,
lists and deletes subscriptions, and reads each one's delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.segmentations.router import SegmentSettingsDep
from services.segment.segmentations.schemas import error_responses
from services.segment.settings import SegmentSettings
from services.segment.webhooks import service
from services.segment.webhooks.delivery import DeliveryStatus
from services.segment.webhooks.schemas import (
    DeliveryPage,
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    WebhookPublic,
)
from services.segment.webhooks.targets import UnsafeTarget, resolve
from shared.auth import Principal, Scope
from shared.db import session_scope
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
WebhookId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A subscription's id")]


def _not_found(webhook_id: int) -> ApiError:
    return ApiError(
        404,
        f"no webhook subscription {webhook_id}",
        errors=[{"field": "webhook_id", "message": "not found"}],
    )


def _create(
    engine: Engine, principal: Principal, body: WebhookCreate, settings: SegmentSettings
) -> WebhookCreated:
    try:  # resolved before a database connection is taken: DNS may be slow
        resolve(body.url, allow_private=settings.webhook_allow_private)
    except UnsafeTarget as exc:
        raise ApiError(
            422, "invalid request", errors=[{"field": "url", "message": str(exc)}]
        ) from None
    try:
        with session_scope(engine) as session:
            created = service.create_subscription(
                session, tenant_id=principal.tenant_id, body=body, created_by=principal.client
            )
            return WebhookCreated.model_validate(created)
    except service.UnknownSegmentsError as exc:
        message = "not a segment of the active segmentation: " + ", ".join(exc.keys)
        raise ApiError(
            422, "invalid request", errors=[{"field": "segments", "message": message}]
        ) from None


@router.post(
    "",
    status_code=201,
    summary="Subscribe a URL to membership changes of chosen segments",
    description="From now on, every entry into or exit from the listed segments is POSTed "
    "to `url` in batches by the segment worker, as JSON signed with the returned `secret` "
    "(HMAC-SHA256 of the body, header `X-Segmenta-Signature: sha256=<hex>`). A delivery "
    "that is not answered with a 2xx is retried with exponential backoff and jitter, and "
    "dead-lettered after the attempt limit. The secret is shown only in this answer. "
    "`url` must resolve to public addresses only (no loopback, private, link-local, "
    "multicast or reserved ones: 422 otherwise), checked again before each delivery; "
    "redirects are not followed. Needs `admin`.",
    response_model=WebhookCreated,
    responses=error_responses(),
)
async def create_webhook(
    body: WebhookCreate, principal: AdminDep, database: DatabaseDep, settings: SegmentSettingsDep
) -> WebhookCreated:
    return await database.run(_create, database.engine, principal, body, settings)


def _list(engine: Engine, tenant_id: int) -> WebhookPage:
    with Session(engine) as session:
        rows = service.list_subscriptions(session, tenant_id=tenant_id)
        return WebhookPage(items=[WebhookPublic.model_validate(row) for row in rows])


@router.get(
    "",
    summary="The tenant's webhook subscriptions",
    description="Every subscription, oldest first, without its secret. Needs `admin`.",
    response_model=WebhookPage,
    responses=error_responses(),
)
async def read_webhooks(principal: AdminDep, database: DatabaseDep) -> WebhookPage:
    return await database.run(_list, database.engine, principal.tenant_id)


def _delete(engine: Engine, tenant_id: int, webhook_id: int) -> None:
    try:
        with session_scope(engine) as session:
            service.delete_subscription(session, tenant_id=tenant_id, webhook_id=webhook_id)
    except service.WebhookDoesNotExist:
        raise _not_found(webhook_id) from None


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Unsubscribe",
    description="Deletes the subscription and its delivery log; pending deliveries are "
    "not sent. Needs `admin`.",
    responses=error_responses(404),
)
async def delete_webhook(
    webhook_id: WebhookId, principal: AdminDep, database: DatabaseDep
) -> Response:
    await database.run(_delete, database.engine, principal.tenant_id, webhook_id)
    return Response(status_code=204)


def _deliveries(
    engine: Engine,
    tenant_id: int,
    webhook_id: int,
    status: str | None,
    before: int | None,
    limit: int,
) -> DeliveryPage:
    with Session(engine) as session:
        try:
            rows = service.deliveries(
                session,
                tenant_id=tenant_id,
                webhook_id=webhook_id,
                status=status,
                before=before,
                limit=limit + 1,
            )
        except service.WebhookDoesNotExist:
            raise _not_found(webhook_id) from None
    page = rows[:limit]
    return DeliveryPage(
        items=[DeliveryPublic.model_validate(row) for row in page],
        next=page[-1]["id"] if len(rows) > limit else None,
    )


@router.get(
    "/{webhook_id}/deliveries",
    summary="A subscription's delivery log",
    description="Its deliveries, newest first: status (`pending`, `delivered`, `dead`), "
    "attempts, the receiver's last status code or the error, and when. Pass the answer's "
    "`next` as `before` for older ones. Needs `admin`.",
    response_model=DeliveryPage,
    responses=error_responses(404),
)
async def read_webhook_deliveries(
    webhook_id: WebhookId,
    principal: AdminDep,
    database: DatabaseDep,
    status: Annotated[DeliveryStatus | None, Query(description="only this status")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="a `next` cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeliveryPage:
    return await database.run(
        _deliveries,
        database.engine,
        principal.tenant_id,
        webhook_id,
        None if status is None else str(status.value),
        before,
        limit,
    )
