"""The delivery tick, run by the segment worker on a beat schedule (never by the API).

1. Collect: for each subscription (row-locked, so one collector at a time), membership
   changes of its segments not yet in any of its deliveries become a new delivery of up
   to ``webhook_batch_size`` changes. A change is recorded once per subscription (unique
   key), so overlapping ticks never send it twice.
2. Send: a due pending delivery is claimed (row-locked, skipping those another tick
   holds); its attempt is counted and its next attempt time set *before* sending, so a
   worker that dies mid-send neither loses the delivery nor retries it without limit.
   The body is built from its change rows at each attempt: a customer erased since
   (their rows cascade) is no longer in it, and a delivery left with no change is
   dropped. The POST is made with no database connection held, to the address the
   URL's host resolves to at that moment once it is checked (public addresses only,
   unless ``webhook_allow_private``: `services.segment.webhooks.targets`), never
   following a redirect. A 2xx marks it
   delivered; anything else waits for the next attempt, after an exponential backoff
   with jitter, or is dead-lettered (``dead``) once the attempt limit is reached.

A body already on its way when the customer is erased cannot be recalled; its retries
no longer carry the customer.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import Engine, text
from sqlmodel import Session

from services.segment.settings import SegmentSettings
from services.segment.webhooks.signing import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    signature,
)
from services.segment.webhooks.targets import UnsafeTarget, resolve
from shared.db import session_scope

log = logging.getLogger(__name__)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


_SUBSCRIPTIONS = text("SELECT id FROM webhook_subscription ORDER BY id")
_LOCK_SUBSCRIPTION = text(
    "SELECT id, tenant_id, segment_keys, created_at FROM webhook_subscription"
    " WHERE id = :id FOR UPDATE SKIP LOCKED"
)
_NEW_CHANGES = text(
    """
    SELECT h.id AS history_id, h.customer_pk, h.from_key, h.to_key, h.changed_at
    FROM membership_history h
    WHERE h.tenant_id = :tenant AND h.changed_at >= :since
      AND h.from_key IS DISTINCT FROM h.to_key
      AND (h.from_key = ANY(:keys) OR h.to_key = ANY(:keys))
      AND NOT EXISTS (
          SELECT 1 FROM webhook_delivery_item i
          WHERE i.subscription_id = :subscription AND i.history_id = h.id
      )
    ORDER BY h.id
    LIMIT :limit
    """
)
_NEW_DELIVERY = text(
    "INSERT INTO webhook_delivery (tenant_id, subscription_id, status)"
    " VALUES (:tenant, :subscription, :status) RETURNING id"
)
_NEW_ITEM = text(
    """
    INSERT INTO webhook_delivery_item
        (tenant_id, delivery_id, subscription_id, history_id, customer_pk, from_key, to_key,
         changed_at)
    VALUES (:tenant, :delivery, :subscription, :history_id, :customer_pk, :from_key, :to_key,
            :changed_at)
    ON CONFLICT DO NOTHING
    """
)
_CLAIM = text(
    """
    SELECT d.id, d.attempts, s.url, s.secret, s.id AS subscription_id
    FROM webhook_delivery d JOIN webhook_subscription s ON s.id = d.subscription_id
    WHERE d.status = :pending AND d.next_attempt_at <= now()
    ORDER BY d.next_attempt_at, d.id
    LIMIT 1
    FOR UPDATE OF d SKIP LOCKED
    """
)
_COUNT_ATTEMPT = text(
    "UPDATE webhook_delivery SET attempts = :attempts, last_attempt_at = now(),"
    " next_attempt_at = now() + make_interval(secs => :delay) WHERE id = :id"
)
_ITEMS = text(
    """
    SELECT c.customer_id, i.from_key, i.to_key, i.changed_at
    FROM webhook_delivery_item i JOIN customer c ON c.id = i.customer_pk
    WHERE i.delivery_id = :delivery
    ORDER BY i.history_id
    """
)
_DROP = text("DELETE FROM webhook_delivery WHERE id = :id")
_RECORD = text(
    """
    UPDATE webhook_delivery
    SET status = :status, last_status_code = :code, last_error = :error,
        delivered_at = CASE WHEN :delivered THEN now() END
    WHERE id = :id AND status = :pending
    """
)


def backoff_s(attempt: int, settings: SegmentSettings, rng: random.Random) -> float:
    """The wait after failed attempt ``attempt`` (1-based): the base doubled per attempt up
    to the cap, of which a random half is waited ("equal jitter": never at once, and
    receivers that failed together are not retried together)."""
    ceiling: float = min(
        settings.webhook_backoff_max_s, settings.webhook_backoff_base_s * 2 ** (attempt - 1)
    )
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def collect(engine: Engine, settings: SegmentSettings) -> int:
    """New deliveries for every subscription; returns how many were made."""
    with Session(engine) as session:
        subscription_ids = list(session.execute(_SUBSCRIPTIONS).scalars())
    made = 0
    for subscription_id in subscription_ids:
        with session_scope(engine) as session:
            made += _collect_one(session, subscription_id, settings)
    return made


def _collect_one(session: Session, subscription_id: int, settings: SegmentSettings) -> int:
    row = session.execute(_LOCK_SUBSCRIPTION, {"id": subscription_id}).mappings().first()
    if row is None:  # gone, or another tick is collecting for it
        return 0
    lookback = datetime.now(UTC) - timedelta(seconds=settings.webhook_lookback_s)
    params = {
        "tenant": row["tenant_id"],
        "subscription": row["id"],
        "keys": row["segment_keys"],
        "since": max(lookback, row["created_at"]),
        "limit": settings.webhook_batch_size,
    }
    made = 0
    while changes := [dict(c) for c in session.execute(_NEW_CHANGES, params).mappings()]:
        delivery = session.execute(
            _NEW_DELIVERY,
            {
                "tenant": row["tenant_id"],
                "subscription": row["id"],
                "status": DeliveryStatus.PENDING,
            },
        ).scalar_one()
        common = {"tenant": row["tenant_id"], "delivery": delivery, "subscription": row["id"]}
        session.execute(_NEW_ITEM, [common | change for change in changes])
        made += 1
        if len(changes) < settings.webhook_batch_size:
            break
    return made


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    subscription_id: int
    attempt: int
    url: str
    secret: str
    body: bytes


def claim(engine: Engine, settings: SegmentSettings, rng: random.Random) -> Claimed | None:
    """The next due delivery, its attempt counted and its body built; None when none is
    due. Deliveries left with no change to send (every customer erased) are dropped."""
    with session_scope(engine) as session:
        while True:
            row = session.execute(_CLAIM, {"pending": DeliveryStatus.PENDING}).mappings().first()
            if row is None:
                return None
            items = session.execute(_ITEMS, {"delivery": row["id"]}).mappings()
            changes = [dict(c) for c in items]
            if changes:
                break
            session.execute(_DROP, {"id": row["id"]})
        attempt = int(row["attempts"]) + 1
        delay = backoff_s(attempt, settings, rng)
        session.execute(_COUNT_ATTEMPT, {"id": row["id"], "attempts": attempt, "delay": delay})
        body = _body(row["id"], row["subscription_id"], attempt, changes)
        return Claimed(row["id"], row["subscription_id"], attempt, row["url"], row["secret"], body)


def _body(
    delivery_id: int, subscription_id: int, attempt: int, changes: list[dict[str, Any]]
) -> bytes:
    payload = {
        "delivery_id": delivery_id,
        "subscription_id": subscription_id,
        "attempt": attempt,
        "sent_at": datetime.now(UTC).isoformat(),
        "changes": [
            {
                "customer_id": change["customer_id"],
                "from_segment": change["from_key"],
                "to_segment": change["to_key"],
                "changed_at": change["changed_at"].isoformat(),
            }
            for change in changes
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def send(
    client: httpx.Client, claimed: Claimed, *, allow_private: bool = False
) -> tuple[int | None, str | None]:
    """POST the body to the address the URL's host resolves to now, once checked
    (`services.segment.webhooks.targets`); the receiver's status code, and an error
    unless it was a 2xx. A refused address is a failed attempt: its name may resolve
    elsewhere by the next one."""
    try:
        target = resolve(claimed.url, allow_private=allow_private)
    except UnsafeTarget as exc:
        return None, f"not sent: the URL {exc}"
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(claimed.secret, claimed.body),
        DELIVERY_HEADER: str(claimed.delivery_id),
        ATTEMPT_HEADER: str(claimed.attempt),
    }
    # https: the certificate is checked against the name, not the address connected to.
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    failed = "could not connect"
    for address in target.addresses:  # the next one only when this one takes no connection
        try:
            response = client.post(
                target.url(address), content=claimed.body, headers=headers, extensions=extensions
            )
            break
        except httpx.ConnectError as exc:
            failed = f"could not connect ({type(exc).__name__})"
        except httpx.TimeoutException:
            return None, "timed out"
        except httpx.HTTPError as exc:
            return None, f"could not connect ({type(exc).__name__})"
    else:
        return None, failed
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"answered {response.status_code}"


def record(
    engine: Engine, settings: SegmentSettings, claimed: Claimed, code: int | None, error: str | None
) -> DeliveryStatus:
    if error is None:
        status = DeliveryStatus.DELIVERED
    elif claimed.attempt >= settings.webhook_max_attempts:
        status = DeliveryStatus.DEAD
    else:
        status = DeliveryStatus.PENDING
    params = {
        "id": claimed.delivery_id,
        "status": status,
        "code": code,
        "error": error,
        "pending": DeliveryStatus.PENDING,
        "delivered": status is DeliveryStatus.DELIVERED,
    }
    with session_scope(engine) as session:
        session.execute(_RECORD, params)
    if status is DeliveryStatus.DEAD:
        log.warning(
            "webhook delivery %d dead-lettered after %d attempts: %s",
            claimed.delivery_id,
            claimed.attempt,
            error,
        )
    return status


def deliver_webhooks(
    engine: Engine, settings: SegmentSettings, rng: random.Random | None = None
) -> dict[str, int]:
    """One tick: collect, then send due deliveries until none is due or the tick's time
    budget is spent. Returns counts per outcome."""
    rng = rng or random.Random()
    counts = {"collected": collect(engine, settings)}
    deadline = time.monotonic() + settings.webhook_tick_budget_s
    # No redirects (a receiver could point them anywhere) and no proxy from the
    # environment (it would resolve the name itself, past the address check).
    client = httpx.Client(
        timeout=settings.webhook_timeout_s, follow_redirects=False, trust_env=False
    )
    with client:
        while time.monotonic() < deadline:
            claimed = claim(engine, settings, rng)
            if claimed is None:
                break
            sent = send(client, claimed, allow_private=settings.webhook_allow_private)
            status = record(engine, settings, claimed, *sent)
            counts[status] = counts.get(status, 0) + 1
    return counts
