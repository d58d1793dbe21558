"""What the probe found in segmentation runs: booleans taken as seeds, and a succeeded
run that reads 90% done."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine, text

from services.segment.segmentations import runs
from services.segment.segmentations.runs import SegmentationParams, SegmentationResult
from shared.db import session_scope
from shared.runs import ArtifactMetadata, DataWindow
from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("field", ["seed", "sample_size"])
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_a_number(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine, field: str, value: bool
) -> None:
    key = make_key("admin")
    answer = segment_client.post("/v1/segmentations", json={field: value}, headers=auth(key))
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert count(engine, "segmentation_run", tenant_of(engine, key)) == 0


def test_a_succeeded_run_reads_fully_done_from_the_moment_it_succeeds(
    engine: Engine, make_key: MakeKey, segment_client: httpx.Client
) -> None:
    key = make_key("admin")
    tenant_id = tenant_of(engine, key)
    params = SegmentationParams(
        algorithm="kmeans",
        k=2,
        feature_set="v1",
        seed=1,
        sample_size=1000,
        promote="never",
        requested_by="t",
    )
    with session_scope(engine) as session:
        run_id = runs.create_run(session, tenant_id=tenant_id, params=params, max_in_flight=3)
    with session_scope(engine) as session:
        assert runs.mark_running(session, run_id)
        request = runs.load_request(session, run_id)
        assert request is not None
        meta = ArtifactMetadata(
            kind="segmentation",
            data_window=DataWindow(as_of=datetime.now(UTC), rows=0),
            feature_set="v1",
            seed=1,
        )
        runs.save_result(session, request, SegmentationResult([], {}, meta))
    # What a reader sees as soon as the training's transaction commits.
    run = segment_client.get(f"/v1/segmentations/{run_id}", headers=auth(key)).json()
    assert run["status"] == "succeeded"
    assert run["progress"] == 1.0
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT progress FROM segmentation_run WHERE id = :id"), {"id": run_id}
        ).scalar_one()
    assert stored == 1.0
