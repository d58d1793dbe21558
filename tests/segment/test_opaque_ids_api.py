"""Through the API: run ids and cursors tell a tenant nothing about other tenants' volumes,
and lists still page newest first, every item once."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.builders import create_run
from tests.segment.conftest import ShopKeys
from tests.support.http import auth, tenant_of

pytestmark = pytest.mark.e2e
LOW, HIGH = 2**48, 2**49


def _all_pages(client: httpx.Client, path: str, key: str, cursor: str, **params: Any) -> list[Any]:
    """Every page's items, following ``next`` (passed as ``cursor``) to the end."""
    items: list[Any] = []
    position: int | None = None
    while True:
        query = params | ({cursor: position} if position is not None else {})
        page = client.get(path, params=query, headers=auth(key))
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        position = page.json()["next"]
        if position is None:
            return items
        assert LOW <= position < HIGH  # a cursor is opaque too


def test_runs_of_two_tenants_made_alternately_page_newest_first_with_opaque_ids(
    segment_client: httpx.Client, shop: ShopKeys, engine: Engine, make_key: MakeKey
) -> None:
    other_key = make_key("segments:read")
    other = tenant_of(engine, other_key)
    mine: list[int] = []
    theirs: list[int] = []
    for _ in range(6):
        for tenant_id, made in ((shop.shop.tenant_id, mine), (other, theirs)):
            with session_scope(engine) as session:
                run = create_run(session, tenant_id=tenant_id)
                assert run.id is not None
                made.append(run.id)

    seen = _all_pages(segment_client, "/v1/segmentations", shop.reader, "before", limit=4)
    ids = [run["id"] for run in seen]
    assert ids == [*reversed(mine), shop.shop.run_id, shop.shop.previous_run_id]
    assert all(LOW <= i < HIGH for i in mine)
    # Sequence values would have stepped by 2: the other tenant's run in between.
    assert not any(abs(b - a) <= 2 for a, b in pairwise(mine))
    assert mine not in (sorted(mine), sorted(mine, reverse=True))
    listed = _all_pages(segment_client, "/v1/segmentations", other_key, "before", limit=4)
    assert [run["id"] for run in listed] == list(reversed(theirs))


def test_a_members_cursor_is_not_a_customer_pk(
    segment_client: httpx.Client, shop: ShopKeys, engine: Engine
) -> None:
    members = _all_pages(segment_client, "/v1/segments/s1/customers", shop.reader, "after", limit=3)
    assert sorted(m["customer_id"] for m in members) == sorted(shop.shop.members["s1"])
    with engine.connect() as conn:
        pk = conn.execute(
            text("SELECT min(id) FROM customer WHERE tenant_id = :t"), {"t": shop.shop.tenant_id}
        ).scalar_one()
    answer = segment_client.get(
        "/v1/segments/s1/customers", params={"after": pk}, headers=auth(shop.reader)
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "after", "message": "not a `next` cursor of this list"}
    ]


@pytest.mark.parametrize("cursor", ["another tenant's run", 12345])
def test_a_cursor_this_list_never_handed_out_is_refused(
    segment_client: httpx.Client,
    shop: ShopKeys,
    engine: Engine,
    make_key: MakeKey,
    cursor: str | int,
) -> None:
    if cursor == "another tenant's run":
        with session_scope(engine) as session:
            run = create_run(session, tenant_id=tenant_of(engine, make_key()))
            cursor = int(run.id or 0)
    answer = segment_client.get(
        "/v1/segmentations", params={"before": cursor}, headers=auth(shop.reader)
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "before"
