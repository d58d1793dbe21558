"""The record endpoints as a shop backend uses them: store, de-duplicate, update, reject."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of

pytestmark = pytest.mark.integration

CUSTOMER = {
    "customer_id": "c-1",
    "email": "Ada.Lovelace@Example.com",
    "phone": "+46 70 123 45 67",
    "signup_at": "2025-03-14T09:26:53Z",
    "attributes": {"country": "SE", "birth_year": 1987},
    "consent": {"email": True},
}
ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "placed_at": "2026-10-30T18:02:11Z",
    "currency": "EUR",
    "total": 159.8,
    "lines": [{"product_id": "p-1", "quantity": 2, "unit_price": 79.9}],
}


def test_a_record_sent_twice_is_stored_once(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    first = client.post("/v1/orders", json=ORDER, headers=auth(key))
    second = client.post("/v1/orders", json=ORDER, headers=auth(key))
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 1
    assert second.json() == {
        "accepted": 0,
        "duplicates": 1,
        "suppressed": 0,
        "rejected": [],
        "rejected_count": 0,
    }
    tenant = tenant_of(engine, key)
    assert count(engine, "orders", tenant) == 1
    assert count(engine, "order_line", tenant) == 1


def test_a_changed_customer_is_updated_and_an_unchanged_one_is_a_duplicate(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    assert client.post("/v1/customers", json=CUSTOMER, headers=auth(key)).json()["accepted"] == 1
    again = client.post("/v1/customers", json=CUSTOMER, headers=auth(key)).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    moved = {**CUSTOMER, "attributes": {"country": "KR", "birth_year": 1987}}
    assert client.post("/v1/customers", json=moved, headers=auth(key)).json()["accepted"] == 1
    with engine.connect() as conn:
        country = conn.execute(
            text("SELECT attributes->>'country' FROM customer WHERE tenant_id = :t"),
            {"t": tenant_of(engine, key)},
        ).scalar_one()
    assert country == "KR"


def test_email_and_phone_are_kept_only_as_keyed_hashes_outside_the_contact_table(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    client.post("/v1/customers", json=CUSTOMER, headers=auth(key)).raise_for_status()
    tenant = tenant_of(engine, key)
    with engine.connect() as conn:
        links = conn.execute(
            text("SELECT kind, value_hash FROM identity_link WHERE tenant_id = :t ORDER BY kind"),
            {"t": tenant},
        ).all()
        dumped = conn.execute(
            text(
                "SELECT string_agg(row_to_json(x)::text, ' ') FROM ("
                "SELECT * FROM customer WHERE tenant_id = :t UNION ALL "
                "SELECT * FROM customer WHERE false) x"
            ),
            {"t": tenant},
        ).scalar_one()
    assert [kind for kind, _ in links] == ["email", "phone"]
    assert all(len(value) == 64 and "@" not in value for _, value in links)
    assert "lovelace" not in dumped.lower()
    assert "123 45 67" not in dumped


def test_a_mixed_batch_stores_the_valid_items_and_names_the_bad_fields(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    bad_total = {**ORDER, "order_id": "o-2", "total": "lots"}
    bad_lines = {
        **ORDER,
        "order_id": "o-3",
        "lines": [{"product_id": "p", "quantity": 0, "unit_price": 1.0}],
    }
    response = client.post("/v1/orders", json=[ORDER, bad_total, bad_lines], headers=auth(key))
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert body["rejected"][0]["errors"][0]["field"] == "total"
    assert body["rejected"][1]["errors"][0]["field"] == "lines.0.quantity"
    assert count(engine, "orders", tenant_of(engine, key)) == 1


def test_a_single_invalid_record_is_a_422_naming_the_field_and_stores_nothing(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    response = client.post(
        "/v1/customers", json={**CUSTOMER, "email": "not-an-email"}, headers=auth(key)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "email"
    assert count(engine, "customer", tenant_of(engine, key)) == 0


@pytest.mark.parametrize("field", ["tenant_id", "id", "customer_pk", "segment", "received_at"])
def test_server_owned_fields_in_a_body_are_refused(
    client: httpx.Client, make_key: MakeKey, engine: Engine, field: str
) -> None:
    key = make_key()
    response = client.post("/v1/orders", json={**ORDER, field: 1}, headers=auth(key))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert count(engine, "orders", tenant_of(engine, key)) == 0


def test_accepted_texts_and_activity_become_outbox_work(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key()
    review = {
        "review_id": "r-1",
        "customer_id": "c-1",
        "text": "Great",
        "rating": 5,
        "created_at": "2026-11-02T08:00:00Z",
    }
    client.post("/v1/orders", json=ORDER, headers=auth(key)).raise_for_status()
    client.post("/v1/reviews", json=review, headers=auth(key)).raise_for_status()
    tenant = tenant_of(engine, key)
    with engine.connect() as conn:
        tasks = conn.execute(
            text("SELECT task_name, count(*) FROM outbox WHERE tenant_id = :t GROUP BY 1"),
            {"t": tenant},
        ).all()
    # One review for nlp; one coalesced refresh for the customer's two changes.
    assert {row[0]: row[1] for row in tasks} == {
        "nlp.analyze_reviews": 1,
        "segment.refresh_customers": 1,
    }


def test_the_openapi_document_has_an_example_for_every_record_kind(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for kind in ("customers", "products", "orders", "events", "reviews", "transcripts"):
        body = spec["paths"][f"/v1/{kind}"]["post"]["requestBody"]["content"]["application/json"]
        assert body["examples"]["one"]["value"], kind
        ref = body["schema"]["oneOf"][0]["$ref"].rsplit("/", 1)[1]
        assert ref in spec["components"]["schemas"]
