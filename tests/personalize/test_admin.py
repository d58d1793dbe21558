"""Offers and placements as an admin configures them, and who may do what."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import MakeKey
from tests.personalize.conftest import Shop
from tests.support.http import auth

pytestmark = [pytest.mark.e2e]

OFFER = {"offer_id": "spring", "name": "Spring sale", "kind": "discount", "placements": ["home"]}


def fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


def test_an_offer_is_created_listed_replaced_and_retired(shop: Shop) -> None:
    created = shop.create_offer("spring", discount_code="SPRING10", value=10, segments=["s1"])
    assert (created["discount_code"], created["segments"], created["retired_at"]) == (
        "SPRING10",
        ["s1"],
        None,
    )
    again = shop.client.post(
        "/v1/offers", json=OFFER | {"offer_id": "spring"}, headers=auth(shop.admin)
    )
    assert again.status_code == 409
    assert fields(again) == ["offer_id"]
    replaced = shop.client.put(
        "/v1/offers/spring",
        json={"name": "Spring sale II", "kind": "content", "placements": ["home", "cart"]},
        headers=auth(shop.admin),
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["name"], replaced.json()["segments"]) == ("Spring sale II", None)
    placement = shop.client.get("/v1/placements/cart", headers=auth(shop.admin))
    assert placement.status_code == 200  # named by an offer: exists with the defaults
    assert (placement.json()["strategy"], placement.json()["holdout_share"]) == ("bandit", 0.05)
    retired = shop.client.delete("/v1/offers/spring", headers=auth(shop.admin))
    assert retired.json()["retired_at"] is not None
    listed = shop.client.get("/v1/offers", headers=auth(shop.admin)).json()["offers"]
    assert listed == []
    everything = shop.client.get(
        "/v1/offers", params={"include_retired": True}, headers=auth(shop.admin)
    ).json()["offers"]
    assert [o["offer_id"] for o in everything] == ["spring"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "voucher"}, "kind"),
        ({"placements": []}, "placements"),
        ({"placements": ["Home Page"]}, "placements.0"),
        ({"value": -1}, "value"),
        ({"name": ""}, "name"),
        ({"offer_id": "a b"}, "offer_id"),
        ({"tenant_id": 2}, "tenant_id"),
        ({"id": 7}, "id"),
        ({"segment": "s1"}, "segment"),
        ({"max_impressions_per_customer_per_day": 0}, "max_impressions_per_customer_per_day"),
        ({"name": "a\x00b"}, "name"),
    ],
)
def test_an_invalid_offer_is_a_422_naming_the_field_and_stores_nothing(
    shop: Shop, change: dict[str, object], field: str
) -> None:
    response = shop.client.post("/v1/offers", json=OFFER | change, headers=auth(shop.admin))
    assert response.status_code == 422, response.text
    assert field in fields(response)
    assert shop.client.get("/v1/offers", headers=auth(shop.admin)).json()["offers"] == []


def test_a_placement_default_must_be_an_offer_served_there(shop: Shop) -> None:
    shop.create_offer("cart-only", placements=["cart"])
    response = shop.client.put(
        "/v1/placements/home", json={"default_offer_id": "cart-only"}, headers=auth(shop.admin)
    )
    assert response.status_code == 422
    assert fields(response) == ["default_offer_id"]
    bad_share = shop.client.put(
        "/v1/placements/home", json={"holdout_share": 0.9}, headers=auth(shop.admin)
    )
    assert fields(bad_share) == ["holdout_share"]
    for exploration in (-0.1, 1.5, "high"):
        bad_exploration = shop.client.put(
            "/v1/placements/home", json={"exploration": exploration}, headers=auth(shop.admin)
        )
        assert fields(bad_exploration) == ["exploration"], exploration
    explored = shop.client.put(
        "/v1/placements/home", json={"exploration": 0.1}, headers=auth(shop.admin)
    )
    assert explored.json()["exploration"] == 0.1
    assert (
        shop.client.get("/v1/placements/cart", headers=auth(shop.admin)).json()["exploration"]
        == 0.05
    )  # the default


def test_the_storefront_key_gets_403_everywhere_but_offers_and_feedback(
    shop: Shop, make_key: MakeKey
) -> None:
    shop.create_offer("x")
    reader = make_key("segments:read")
    admin_routes = [
        ("POST", "/v1/offers", OFFER),
        ("GET", "/v1/offers", None),
        ("PUT", "/v1/offers/x", OFFER),
        ("DELETE", "/v1/offers/x", None),
        ("PUT", "/v1/placements/home", {}),
        ("GET", "/v1/placements/home", None),
        ("POST", "/v1/experiments", {"name": "e", "placement": "home", "arms": []}),
        ("GET", "/v1/experiments/1", None),
        ("GET", "/v1/placements/home/evaluation", None),
    ]
    for key in (shop.storefront, reader):
        for method, path, body in admin_routes:
            response = shop.client.request(method, path, json=body, headers=auth(key))
            assert response.status_code == 403, (method, path, response.status_code)
    assert shop.client.get("/v1/offers/c-1", headers=auth(reader)).status_code == 403
    assert shop.client.post("/v1/feedback", json=[], headers=auth(reader)).status_code == 403
    assert shop.client.get("/v1/offers/c-1").status_code == 401


def test_another_tenant_sees_nothing_of_this_one(shop: Shop, make_key: MakeKey) -> None:
    shop.create_offer("mine")
    shop.serving({"mine"})
    decision = shop.offers("c-1").json()["decision_id"]
    tenant = f"other-{uuid.uuid4().hex[:8]}"
    other_admin = make_key("admin", tenant=tenant)
    other_front = make_key("offers:read", "feedback:write", tenant=tenant)
    assert shop.client.get("/v1/offers", headers=auth(other_admin)).json()["offers"] == []
    assert shop.client.get("/v1/offers/c-1", headers=auth(other_front)).status_code == 404
    assert (
        shop.client.put(
            "/v1/offers/mine",
            json={k: v for k, v in OFFER.items() if k != "offer_id"},
            headers=auth(other_admin),
        ).status_code
        == 404
    )
    stolen = shop.client.post(
        "/v1/feedback",
        json={"decision_id": decision, "offer_id": "mine", "kind": "click"},
        headers=auth(other_front),
    ).json()
    assert stolen["accepted"] == 0
    assert [e["field"] for e in stolen["rejected"][0]["errors"]] == ["decision_id"]
