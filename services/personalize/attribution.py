"""Conversions that arrive without the storefront: orders that used an offer's discount
code, or were placed within the window after a click on an offer.

The worker reads new orders in id order from a cursor (one row, moved in the same
transaction as the conversions it writes), so each order is looked at once; the
conversion's event id is the order's, so a replay stores nothing twice.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import text
from sqlmodel import Session

from shared.contracts import PERSONALIZE_APPLY_FEEDBACK
from shared.outbox import enqueue

CURSOR = "orders"
BATCH = 5_000

SETTLE_S = 10
# The order's time comes from the shop's clock, the decision's and click's from ours.
CLOCK_SKEW_S = 300
_MAKE_CURSOR = text(
    "INSERT INTO attribution_cursor (name, last_order_pk) VALUES (:name, 0) "
    "ON CONFLICT (name) DO NOTHING"
)
_READ_CURSOR = text("SELECT last_order_pk FROM attribution_cursor WHERE name = :name FOR UPDATE")
# Raw SQL: one set-based pass per batch of orders. A discount code names its offer; a
# click names its decision. The latest matching decision (or click) in the window wins.
_CONVERT = text(
    """
    WITH batch AS (
        SELECT id, tenant_id, order_id, customer_pk, placed_at, total, discount_code
        FROM orders
        -- settled: a transaction still writing lower ids would otherwise be passed over
        WHERE id > :after AND received_at < now() - make_interval(secs => :settle_s)
        ORDER BY id LIMIT :limit
    ), by_code AS (
        SELECT DISTINCT ON (b.id) b.id, b.tenant_id, b.order_id, b.placed_at, b.total,
               d.decision_id, o.offer_id, d.subject_hash, d.customer_pk, d.placement
        FROM batch b
        JOIN offer o ON o.tenant_id = b.tenant_id AND o.discount_code = b.discount_code
        JOIN decision d ON d.tenant_id = b.tenant_id AND d.customer_pk = b.customer_pk
             AND d.offers @> jsonb_build_array(jsonb_build_object('offer_id', o.offer_id))
             AND d.created_at BETWEEN b.placed_at - make_interval(hours => :window_h)
                                  AND b.placed_at + make_interval(secs => :skew_s)
        ORDER BY b.id, d.created_at DESC
    ), by_click AS (
        SELECT DISTINCT ON (b.id) b.id, b.tenant_id, b.order_id, b.placed_at, b.total,
               f.decision_id, f.offer_id, f.subject_hash, f.customer_pk, d.placement
        FROM batch b
        JOIN feedback f ON f.tenant_id = b.tenant_id AND f.customer_pk = b.customer_pk
             AND f.kind = 'click'
             AND f.occurred_at BETWEEN b.placed_at - make_interval(hours => :window_h)
                                   AND b.placed_at + make_interval(secs => :skew_s)
        JOIN decision d ON d.decision_id = f.decision_id
        WHERE b.id NOT IN (SELECT id FROM by_code)
        ORDER BY b.id, f.occurred_at DESC
    ), converted AS (
        INSERT INTO feedback (tenant_id, event_id, decision_id, subject_hash, customer_pk,
                              offer_id, kind, value, occurred_at)
        SELECT tenant_id, 'order:' || order_id, decision_id, subject_hash, customer_pk,
               offer_id, 'conversion', total::float8, placed_at
        FROM (SELECT * FROM by_code UNION ALL SELECT * FROM by_click) matched
        ON CONFLICT (tenant_id, event_id) DO NOTHING
        RETURNING tenant_id, decision_id
    )
    SELECT (SELECT max(id) FROM batch),
           (SELECT coalesce(array_agg(DISTINCT p.tenant_id || ':' || p.id), '{}')
            FROM converted c JOIN decision d ON d.decision_id = c.decision_id
            JOIN placement p ON p.tenant_id = d.tenant_id AND p.name = d.placement)
    """
)


def attribute_orders(session: Session, *, window_h: int) -> bool:
    """Convert the next batch of settled orders; False once caught up."""
    session.execute(_MAKE_CURSOR, {"name": CURSOR})
    after = session.execute(_READ_CURSOR, {"name": CURSOR}).scalar_one()
    last, placements = session.execute(
        _CONVERT,
        {
            "after": after,
            "limit": BATCH,
            "window_h": window_h,
            "settle_s": SETTLE_S,
            "skew_s": CLOCK_SKEW_S,
        },
    ).one()
    if last is None:
        return False
    session.execute(
        text(
            "UPDATE attribution_cursor SET last_order_pk = :last, updated_at = now() "
            "WHERE name = :name"
        ),
        {"last": last, "name": CURSOR},
    )
    by_tenant: dict[int, list[int]] = defaultdict(list)
    for pair in placements:
        tenant_id, placement_id = (int(x) for x in pair.split(":"))
        by_tenant[tenant_id].append(placement_id)
    for tenant_id, ids in by_tenant.items():
        enqueue(session, tenant_id=tenant_id, task_name=PERSONALIZE_APPLY_FEEDBACK, subject_ids=ids)
    return True
