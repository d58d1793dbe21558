"""Every documented seed (0..2^32-1) is stored: the column once held only 31 bits."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.conftest import MakeKey
from tests.support.http import auth, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.mark.parametrize("seed", [2**31 - 1, 2**31, 2**32 - 1])
def test_a_seed_anywhere_in_the_documented_range_is_accepted_and_stored(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine, seed: int
) -> None:
    key = make_key("admin")
    response = segment_client.post(
        "/v1/segmentations", json={"seed": seed, "promote": "never"}, headers=auth(key)
    )
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["seed"] == seed
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT seed FROM segmentation_run WHERE id = :id AND tenant_id = :t"),
            {"id": run["id"], "t": tenant_of(engine, key)},
        ).scalar_one()
    assert stored == seed
    again = segment_client.get(f"/v1/segmentations/{run['id']}", headers=auth(key))
    assert again.json()["seed"] == seed
