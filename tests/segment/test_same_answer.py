"""The same data, seed and parameters give the same segmentation, and asking again on
unchanged data (a restart of the demo) does not train again. Between two different
runs, the changes view says who moves where and why, and the report gives CLV intervals.

A demo shop goes in through the ingest API; runs are asked for through the segment API
and trained by the training pipeline in this process, on the real database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from segmenta.client import upload
from segmenta.demo.generate import generate
from services.segment.settings import SegmentSettings
from services.segment.training.pipeline import train_run
from shared.auth import create_api_key
from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.test_worker import place_order
from tests.support.http import auth, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KINDS = ("customers", "products", "orders", "events", "reviews", "transcripts")
ASK = {"algorithm": "kmeans", "k": "auto", "seed": 7, "promote": "always"}


@dataclass(frozen=True)
class Tenant:
    id: int
    ingest: str
    admin: str


@pytest.fixture(scope="module")
def tenant(api: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Tenant:
    name = f"same-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        ingest = create_api_key(session, client="shop", scopes=["ingest:write"], tenant=name).key
        admin = create_api_key(session, client="analyst", scopes=["admin"], tenant=name).key
    data = tmp_path_factory.mktemp("same")
    generate(500, 5, data)
    for kind in KINDS:
        upload(api, ingest, kind, data / f"{kind}.jsonl", quiet=True)
    return Tenant(tenant_of(engine, admin), ingest, admin)


@pytest.fixture
def segments(segment_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=segment_api, timeout=60) as client:
        yield client


def ask_and_train(client: httpx.Client, engine: Engine, tenant: Tenant, **extra: Any) -> Any:
    response = client.post("/v1/segmentations", json=ASK | extra, headers=auth(tenant.admin))
    assert response.status_code in (200, 202), response.text
    body = response.json()
    if response.status_code == 202:
        train_run(engine, SegmentSettings(), body["id"])
    return response.status_code, body


def partition(engine: Engine, run_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        segments = conn.execute(
            text("SELECT key, name, size FROM segment WHERE run_id = :r ORDER BY key"),
            {"r": run_id},
        ).all()
        curve = conn.execute(
            text("SELECT metrics -> 'k_curve' FROM segmentation_run WHERE id = :r"), {"r": run_id}
        ).scalar_one()
    # Features are computed as of the training's start, seconds apart: scores may differ
    # in far decimals, the choice of k (every k's ranks) and the segments may not.
    ranks = [(point["k"], point["ranks"]) for point in curve]
    return {"segments": [tuple(row) for row in segments], "k_ranks": ranks}


def assignments(engine: Engine, tenant_id: int) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT customer_pk, segment_key FROM segment_membership WHERE tenant_id = :t"),
            {"t": tenant_id},
        ).all()
    return {int(pk): str(key) for pk, key in rows}


def runs_of(engine: Engine, tenant_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM segmentation_run WHERE tenant_id = :t"), {"t": tenant_id}
            ).scalar_one()
        )


def test_same_data_same_segmentation_and_no_retrain_when_unchanged(
    segments: httpx.Client, engine: Engine, tenant: Tenant, api: str
) -> None:
    _, first = ask_and_train(segments, engine, tenant)
    first_members = assignments(engine, tenant.id)
    # Asked again without skipping: a second training gives the very same answer.
    _, second = ask_and_train(segments, engine, tenant)
    assert second["id"] != first["id"]
    assert partition(engine, second["id"]) == partition(engine, first["id"])
    assert assignments(engine, tenant.id) == first_members
    # A restart on unchanged data: the active run comes back, nothing is trained.
    before = runs_of(engine, tenant.id)
    status, again = ask_and_train(segments, engine, tenant, skip_if_unchanged=True)
    assert (status, again["id"], again["unchanged"]) == (200, second["id"], True)
    assert again["status"] == "succeeded"
    assert runs_of(engine, tenant.id) == before
    # New data: one more order, and the same request trains again.
    with engine.connect() as conn:
        customer = conn.execute(
            text("SELECT customer_id FROM customer WHERE tenant_id = :t LIMIT 1"),
            {"t": tenant.id},
        ).scalar_one()
    place_order(api, tenant.ingest, customer)
    status, changed = ask_and_train(segments, engine, tenant, skip_if_unchanged=True)
    assert (status, changed["unchanged"]) == (202, False)
    # Other parameters on the same data are another training too.
    status, other = ask_and_train(segments, engine, tenant, skip_if_unchanged=True, k=3)
    assert (status, other["unchanged"]) == (202, False)
    assert runs_of(engine, tenant.id) == before + 2


def test_changes_between_two_runs_say_who_moves_where_and_why(
    segments: httpx.Client, engine: Engine, tenant: Tenant, make_key: MakeKey
) -> None:
    _, coarse = ask_and_train(segments, engine, tenant, k=3)
    _, fine = ask_and_train(segments, engine, tenant, k=6)
    response = segments.get(
        f"/v1/segmentations/{fine['id']}/changes",
        params={"against": coarse["id"], "sample": 5},
        headers=auth(tenant.admin),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    flows = body["flows"]
    assert (
        sum(flow["customers"] for flow in flows)
        == body["customers"]
        == len(assignments(engine, tenant.id))
    )
    moved = [flow for flow in flows if flow["from_key"] != flow["to_key"]]
    assert body["moved"] == sum(flow["customers"] for flow in moved) > 0
    with engine.connect() as conn:
        known = set(
            conn.execute(
                text("SELECT customer_id FROM customer WHERE tenant_id = :t"), {"t": tenant.id}
            ).scalars()
        )
    for flow in flows:
        assert flow["from_name"]
        assert flow["to_name"]
        assert 0 < len(flow["sample"]) <= min(5, flow["customers"])
        assert set(flow["sample"]) <= known
    for flow in moved:  # why: the features that set the new segment apart from the old
        assert flow["why"], flow
        shifts = [abs(shift["shift"]) for shift in flow["why"]]
        assert shifts == sorted(shifts, reverse=True)
        assert all(shift["label"] for shift in flow["why"])
    # The dashboard draws these changes: it is told it can ask for them.
    data = segments.get("/v1/dashboard/data", headers=auth(tenant.admin)).json()
    assert data["run"]["id"] == fine["id"]
    assert data["run"]["metrics"]["previous_run_id"] is not None
    assert data["run"]["changes_note"] is None
    # The new run is active: its members' scores give each segment's CLV an interval.
    page = segments.get(f"/v1/segmentations/{fine['id']}/report", headers=auth(tenant.admin)).text
    assert page.count("<section>") == 6
    assert "95% interval of the mean" in page
    # A storefront key may not read it; another tenant's reader does not find it.
    path = f"/v1/segmentations/{fine['id']}/changes"
    storefront = make_key("offers:read", tenant=_name(engine, tenant.id))
    stranger = make_key("segments:read")
    for key, status in ((storefront, 403), (stranger, 404), (tenant.admin, 200)):
        answer = segments.get(path, params={"against": coarse["id"]}, headers=auth(key))
        assert answer.status_code == status, answer.text


def _name(engine: Engine, tenant_id: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT name FROM tenant WHERE id = :t"), {"t": tenant_id}
            ).scalar_one()
        )
