"""GDPR erasure: nothing of the customer is left in any table, and they stay erased."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.pii import keyed_hash, normalise_email
from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of

pytestmark = pytest.mark.integration

WHO = "c-erase-7f3a"
EMAIL = "Greta.Erased@example.org"
PHONE = "+46 70 999 88 77"
MARKERS = [WHO, EMAIL.lower(), "999 88 77", "46709998877", "zanzibar-parcel"]


def load_customer(
    client: httpx.Client, key: str, customer_id: str, marker: str, email: str, phone: str
) -> None:
    h = auth(key)
    stamp = "2026-11-01T10:00:00Z"
    posts = {
        "customers": {
            "customer_id": customer_id,
            "email": email,
            "phone": phone,
            "attributes": {"note": marker},
        },
        "orders": {
            "order_id": f"o-{customer_id}",
            "customer_id": customer_id,
            "placed_at": stamp,
            "currency": "SEK",
            "total": 10.0,
            "lines": [{"product_id": "p-1", "quantity": 1, "unit_price": 10.0}],
        },
        "events": {
            "event_id": f"e-{customer_id}",
            "customer_id": customer_id,
            "type": "search",
            "occurred_at": stamp,
            "properties": {"q": marker},
        },
        "reviews": {
            "review_id": f"r-{customer_id}",
            "customer_id": customer_id,
            "text": f"My {marker} was late",
            "created_at": stamp,
        },
        "transcripts": {
            "transcript_id": f"t-{customer_id}",
            "customer_id": customer_id,
            "channel": "chat",
            "started_at": stamp,
            "turns": [{"speaker": "customer", "text": f"Where is my {marker}?"}],
        },
    }
    for kind, body in posts.items():
        assert client.post(f"/v1/{kind}", json=body, headers=h).json()["accepted"] == 1, kind


def rows_mentioning(engine: Engine, needle: str) -> dict[str, int]:
    """Every table of the schema, every column, rendered as text and searched."""
    found = {}
    with engine.connect() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            )
            .scalars()
            .all()
        )
        for table in tables:
            n = conn.execute(
                text(f'SELECT count(*) FROM "{table}" t WHERE lower(t::text) LIKE :needle'),
                {"needle": f"%{needle.lower()}%"},
            ).scalar_one()
            if n:
                found[table] = n
    return found


def test_erasure_leaves_nothing_of_the_customer_in_any_table(
    client: httpx.Client, make_key: MakeKey, engine: Engine, settings: object
) -> None:
    key = make_key("admin")
    load_customer(client, key, WHO, "zanzibar-parcel", EMAIL, PHONE)
    load_customer(client, key, "c-keep-1", "wombat-parcel", "kept@example.org", "+46 70 111 22 33")
    tenant = tenant_of(engine, key)
    with engine.connect() as conn:
        pk = conn.execute(
            text("SELECT id FROM customer WHERE customer_id = :c"), {"c": WHO}
        ).scalar_one()
    assert rows_mentioning(engine, "zanzibar-parcel")  # the scan does find things

    response = client.delete(f"/v1/customers/{WHO}", headers=auth(key))
    assert response.status_code == 200
    erased = response.json()
    assert erased["status"] == "completed"
    rows = erased["stores"]["postgres"]["rows"]
    assert (rows["customer"], rows["orders"], rows["transcript"]) == (1, 1, 1)

    for marker in MARKERS:
        assert rows_mentioning(engine, marker) == {}, marker
    with engine.connect() as conn:
        referencing = (
            conn.execute(
                text(
                    "SELECT table_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND column_name = 'customer_pk'"
                )
            )
            .scalars()
            .all()
        )
        for table in referencing:
            left = conn.execute(
                text(f'SELECT count(*) FROM "{table}" WHERE customer_pk = :pk'), {"pk": pk}
            ).scalar_one()
            assert left == 0, table
    email_hash = keyed_hash("test-secret-key-0123456789", normalise_email(EMAIL), purpose="email")
    assert rows_mentioning(engine, email_hash) == {}
    # The other customer is untouched.
    assert rows_mentioning(engine, "wombat-parcel")
    assert count(engine, "customer", tenant) == 1

    status = client.get(f"/v1/erasures/{erased['erasure_id']}", headers=auth(key))
    assert status.json()["stores"] == erased["stores"]


def test_records_for_an_erased_customer_are_suppressed_from_then_on(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("admin")
    who = "c-gone-for-good"
    client.delete(f"/v1/customers/{who}", headers=auth(key)).raise_for_status()
    order = {
        "order_id": "o-late",
        "customer_id": who,
        "placed_at": "2026-11-01T10:00:00Z",
        "currency": "SEK",
        "total": 1.0,
        "lines": [{"product_id": "p", "quantity": 1, "unit_price": 1.0}],
    }
    other = {**order, "order_id": "o-other", "customer_id": "c-someone-else"}
    body = client.post("/v1/orders", json=[order, other], headers=auth(key)).json()
    assert (body["accepted"], body["suppressed"]) == (1, 1)
    assert rows_mentioning(engine, who) == {}


def test_only_admins_may_erase(client: httpx.Client, make_key: MakeKey) -> None:
    key = make_key("ingest:write")
    assert client.delete(f"/v1/customers/{WHO}", headers=auth(key)).status_code == 403
