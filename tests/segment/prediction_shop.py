"""A shop with a purchase history that churn models can learn: each customer buys at their
own rate until, for some, a drop-out day after which they never buy again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, text

from shared.db import session_scope
from shared.models.tenancy import Tenant

NOW = datetime.now(UTC).replace(microsecond=0)
HISTORY_DAYS = 540

_CUSTOMERS = text(
    """
    INSERT INTO customer (tenant_id, customer_id, signup_at)
    SELECT :t, u.cid, u.signup FROM unnest(CAST(:ids AS text[]), CAST(:signups AS timestamptz[]))
        AS u(cid, signup)
    RETURNING id, customer_id
    """
)
_ORDERS = text(
    """
    INSERT INTO orders (tenant_id, order_id, customer_pk, placed_at, currency, total, channel)
    SELECT :t, u.oid, u.pk, u.at, 'EUR', u.total, 'web'
    FROM unnest(CAST(:oids AS text[]), CAST(:pks AS bigint[]), CAST(:ats AS timestamptz[]),
                CAST(:totals AS numeric[])) AS u(oid, pk, at, total)
    """
)


@dataclass(frozen=True)
class HistoryShop:
    tenant_id: int
    customer_ids: list[str]
    customer_pks: list[int]


def new_tenant(engine: Engine) -> int:
    with session_scope(engine) as session:
        tenant = Tenant(name=f"predict-{uuid.uuid4().hex[:10]}")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        return tenant.id


def build_history_shop(
    engine: Engine, *, customers: int = 500, seed: int = 11, now: datetime = NOW
) -> HistoryShop:
    """``customers`` customers with orders over the last ``HISTORY_DAYS`` days up to ``now``."""
    rng = np.random.default_rng(seed)
    tenant_id = new_tenant(engine)
    start = now - timedelta(days=HISTORY_DAYS)
    signup_day = rng.uniform(0, HISTORY_DAYS - 200, customers)
    ids = [f"h-{i:05d}" for i in range(customers)]
    signups = [start + timedelta(days=float(d)) for d in signup_day]
    with session_scope(engine) as session:
        rows = session.execute(_CUSTOMERS, {"t": tenant_id, "ids": ids, "signups": signups}).all()
        pk_of = {cid: int(pk) for pk, cid in rows}
        oids, pks, ats, totals = [], [], [], []
        for i, cid in enumerate(ids):
            rate = rng.gamma(2.0, 1 / 40)  # orders per day: one every ~20 days on average
            drop = signup_day[i] + rng.exponential(250)  # some leave, some stay
            day = signup_day[i]
            n = 0
            while True:
                day += rng.exponential(1 / rate)
                if day >= min(drop, HISTORY_DAYS):
                    break
                n += 1
                oids.append(f"{cid}-o{n}")
                pks.append(pk_of[cid])
                ats.append(start + timedelta(days=float(day)))
                totals.append(round(float(rng.gamma(3, 20)), 2))
        session.execute(
            _ORDERS, {"t": tenant_id, "oids": oids, "pks": pks, "ats": ats, "totals": totals}
        )
    return HistoryShop(tenant_id, ids, [pk_of[c] for c in ids])
