"""Subscriptions: create, list, delete; and a subscription's delivery log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from services.segment.segmentations.repository import active_run
from services.segment.webhooks.schemas import WebhookCreate
from services.segment.webhooks.signing import new_secret
from shared.cursors import position
from shared.models import Segment, WebhookSubscription


class WebhookDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    pass


class UnknownSegmentsError(ValueError):
    def __init__(self, keys: list[str]) -> None:
        super().__init__(", ".join(keys))
        self.keys = keys


def create_subscription(
    session: Session, *, tenant_id: int, body: WebhookCreate, created_by: str
) -> WebhookSubscription:
    run = active_run(session, tenant_id=tenant_id)
    known: set[str] = set()
    if run is not None:
        query = select(Segment.key).where(
            Segment.tenant_id == tenant_id, Segment.run_id == run["id"]
        )
        known = set(session.exec(query))
    unknown = [key for key in body.segments if key not in known]
    if unknown:
        raise UnknownSegmentsError(unknown)
    subscription = WebhookSubscription(
        tenant_id=tenant_id,
        url=body.url,
        segment_keys=body.segments,
        secret=new_secret(),
        description=body.description,
        created_by=created_by,
    )
    session.add(subscription)
    session.flush()
    session.refresh(subscription)
    return subscription


def list_subscriptions(session: Session, *, tenant_id: int) -> list[WebhookSubscription]:
    query = (
        select(WebhookSubscription)
        .where(WebhookSubscription.tenant_id == tenant_id)
        .order_by(col(WebhookSubscription.created_at), col(WebhookSubscription.id))
    )
    return list(session.exec(query))


def get_subscription(session: Session, *, tenant_id: int, webhook_id: int) -> WebhookSubscription:
    found = session.get(WebhookSubscription, webhook_id)
    if found is None or found.tenant_id != tenant_id:
        raise WebhookDoesNotExist(webhook_id)
    return found


def delete_subscription(session: Session, *, tenant_id: int, webhook_id: int) -> None:
    """The subscription and its deliveries, pending ones included (nothing more is sent)."""
    session.delete(get_subscription(session, tenant_id=tenant_id, webhook_id=webhook_id))
    session.flush()


_DELIVERIES = text(
    """
    SELECT d.id, d.status, d.attempts, d.last_status_code, d.last_error, d.created_at,
           d.last_attempt_at, d.delivered_at,
           CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
           (SELECT count(*) FROM webhook_delivery_item i WHERE i.delivery_id = d.id) AS changes
    FROM webhook_delivery d
    WHERE d.tenant_id = :tenant AND d.subscription_id = :subscription
      AND (CAST(:before_at AS timestamptz) IS NULL
           OR (d.created_at, d.id) < (:before_at, :before))
      AND (CAST(:status AS text) IS NULL OR d.status = :status)
    ORDER BY d.created_at DESC, d.id DESC
    LIMIT :limit
    """
)


def deliveries(
    session: Session,
    *,
    tenant_id: int,
    webhook_id: int,
    status: str | None,
    before: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, older than delivery ``before`` when given."""
    get_subscription(session, tenant_id=tenant_id, webhook_id=webhook_id)
    params = {
        "tenant": tenant_id,
        "subscription": webhook_id,
        "status": status,
        "before": before,
        "before_at": position(
            session, table="webhook_delivery", tenant_id=tenant_id, cursor=before, field="before"
        ),
        "limit": limit,
    }
    return [dict(row) for row in session.execute(_DELIVERIES, params).mappings()]
