"""GDPR erasure: nothing of the customer is left in any table, Redis key or run artifact,
and they stay erased.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from redis import Redis
from sqlalchemy import Engine, text

from services.personalize.cache import customer_key, recs_key, subject_hash
from shared.pii import keyed_hash, normalise_email
from tests.conftest import MakeKey
from tests.support.erasure import (
    draw_map,
    erasing_workers,
    map_of,
    redis_mentions,
    wait_for_erasure,
)
from tests.support.http import auth, count, tenant_of
from tests.support.servers import Process

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


@pytest.fixture(scope="module")
def workers(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Process]]:
    with erasing_workers(env, tmp_path_factory.mktemp("erasure")) as processes:
        yield processes


def customer_pk_of(engine: Engine, customer_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT id FROM customer WHERE customer_id = :c"), {"c": customer_id}
            ).scalar_one()
        )


SECRET = "test-secret-key-0123456789"


def cache(redis_url: str, tenant: int, customer_id: str, marker: str) -> None:
    """What personalize keeps about a customer, by id hash: their segment and consent,
    and their precomputed product recommendations."""
    subject = subject_hash(SECRET, customer_id)
    with Redis.from_url(redis_url) as client:
        client.hset(
            customer_key(tenant, subject),
            mapping={"segment": "s1", "consent": "1", "last_offer": f"offer for {marker}"},
        )
        client.set(recs_key(tenant, subject), f'{{"v": 1, "items": ["for {marker}"]}}')


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
    client: httpx.Client,
    make_key: MakeKey,
    engine: Engine,
    redis_url: str,
    workers: list[Process],
) -> None:
    key = make_key("admin")
    load_customer(client, key, WHO, "zanzibar-parcel", EMAIL, PHONE)
    load_customer(client, key, "c-keep-1", "wombat-parcel", "kept@example.org", "+46 70 111 22 33")
    tenant = tenant_of(engine, key)
    pk = customer_pk_of(engine, WHO)
    cache(redis_url, tenant, WHO, "zanzibar-parcel")
    cache(redis_url, tenant, "c-keep-1", "wombat-parcel")
    run_id = draw_map(engine, tenant, n_points=5)
    assert rows_mentioning(engine, "zanzibar-parcel")  # the scan does find things
    assert redis_mentions(redis_url, ["zanzibar-parcel"])  # and so does the Redis one

    response = client.delete(f"/v1/customers/{WHO}", headers=auth(key))
    assert response.status_code == 200
    erased = wait_for_erasure(client, key, response.json()["erasure_id"], workers)
    assert erased["status"] == "completed"
    rows = erased["stores"]["postgres"]["rows"]
    assert (rows["customer"], rows["orders"], rows["transcript"]) == (1, 1, 1)
    assert erased["stores"]["personalize-cache"]["rows"] == {"redis_keys": 2}
    assert erased["stores"]["segment-artifacts"]["rows"] == {
        "segmentation_run": 1,
        "map_points": 10,
    }

    for marker in MARKERS:
        assert rows_mentioning(engine, marker) == {}, marker
        assert redis_mentions(redis_url, [marker]) == [], marker
    erased_subject = subject_hash(SECRET, WHO)
    for gone in (customer_key(tenant, erased_subject), recs_key(tenant, erased_subject)):
        assert redis_mentions(redis_url, [gone]) == [], gone
    kept = recs_key(tenant, subject_hash(SECRET, "c-keep-1"))
    assert redis_mentions(redis_url, [kept]) == [kept]
    assert (map_of(engine, run_id)["points"], map_of(engine, run_id)["pca_points"]) == ([], [])
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
    email_hash = keyed_hash(SECRET, normalise_email(EMAIL), purpose="email")
    assert rows_mentioning(engine, email_hash) == {}
    # The other customer is untouched.
    assert rows_mentioning(engine, "wombat-parcel")
    assert redis_mentions(redis_url, ["wombat-parcel"])
    assert count(engine, "customer", tenant) == 1

    status = client.get(f"/v1/erasures/{erased['erasure_id']}", headers=auth(key))
    assert status.json()["stores"] == erased["stores"]


def test_erasing_again_completes_and_erases_nothing_more(
    client: httpx.Client, make_key: MakeKey, engine: Engine, workers: list[Process]
) -> None:
    key = make_key("admin")
    who = "c-erase-twice"
    load_customer(client, key, who, "twice-parcel", "twice@example.org", "+46 70 222 33 44")
    first = client.delete(f"/v1/customers/{who}", headers=auth(key)).json()
    again = client.delete(f"/v1/customers/{who}", headers=auth(key)).json()
    assert again["erasure_id"] != first["erasure_id"]
    first = wait_for_erasure(client, key, first["erasure_id"], workers)
    again = wait_for_erasure(client, key, again["erasure_id"], workers)
    assert first["stores"]["postgres"]["rows"]["customer"] == 1
    assert again["stores"]["postgres"]["rows"] == {}
    assert set(again["stores"]) == set(first["stores"])
    assert all(store["status"] == "erased" for store in again["stores"].values())
    assert rows_mentioning(engine, "twice-parcel") == {}


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
