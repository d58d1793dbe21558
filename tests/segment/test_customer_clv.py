"""One customer's CLV as the API shows it: with its currency, and, where the model has too
little of the customer's history, no number but the reason."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, text

from services.segment.features import get_feature_set
from shared.db import session_scope
from tests.segment.conftest import ShopKeys
from tests.support.http import auth

NAMES = get_feature_set("v1").names


def test_a_one_order_customer_of_last_month_gets_the_reason_not_a_value(
    segment_client: httpx.Client, shop: ShopKeys, engine: Engine
) -> None:
    newcomer, regular = shop.shop.members["s1"][:2]
    pk = shop.shop.customer_pks[newcomer]
    with session_scope(engine) as session:
        session.execute(
            text("UPDATE customer_score SET clv = NULL WHERE customer_pk = :pk"), {"pk": pk}
        )
        # SQL arrays count from 1.
        for name, value in (("purchase_days", 1.0), ("first_purchase_age_days", 20.0)):
            session.execute(
                text(
                    "UPDATE customer_features SET feature_values[:i] = :v WHERE customer_pk = :pk"
                ),
                {"i": NAMES.index(name) + 1, "v": value, "pk": pk},
            )
    body = segment_client.get(f"/v1/customers/{newcomer}", headers=auth(shop.reader)).json()
    assert body["currency"] == "EUR"  # the shop has no orders: the setting's default
    assert body["scores"]["clv"] is None
    assert "too little history" in body["scores"]["clv_note"]
    other = segment_client.get(f"/v1/customers/{regular}", headers=auth(shop.reader)).json()
    assert other["scores"]["clv"] is not None
    assert other["scores"]["clv_note"] is None
    segments = segment_client.get("/v1/segments", headers=auth(shop.reader)).json()
    dashboard = segment_client.get("/v1/dashboard/data", headers=auth(shop.reader)).json()
    assert segments["currency"] == dashboard["currency"] == "EUR"
