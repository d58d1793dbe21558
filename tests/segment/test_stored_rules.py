"""Segment rules as the training task stores them, read back by assignment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.assignment.runs import load_run
from services.segment.modeling.segmenter import Segmenter
from shared.contracts.rules import SegmentRules
from shared.contracts.stored import StoredShapeError
from shared.models.tenancy import Tenant
from tests.segment.builders import create_run, create_segment

pytestmark = pytest.mark.integration

NAMES = ["recency_days", "monetary"]


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection) as session:
            yield session
        transaction.rollback()


def _tenant(session: Session) -> int:
    tenant = Tenant(name=f"shop-{uuid.uuid4().hex[:10]}")
    session.add(tenant)
    session.flush()
    assert tenant.id is not None
    return tenant.id


def _fitted() -> tuple[Segmenter, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = [(10.0, 900.0), (200.0, 50.0), (60.0, 300.0)]
    data = np.vstack([rng.normal(c, (3.0, 20.0), size=(40, 2)) for c in centres])
    segmenter = Segmenter(algorithm="kmeans", k=3, seed=0).fit(data, feature_names=NAMES)
    segmenter.assign_keys([f"c{i}" for i in range(len(data))])
    return segmenter, data


def test_rules_from_the_modeling_report_round_trip_through_the_stored_row(
    session: Session,
) -> None:
    segmenter, data = _fitted()
    report = segmenter.explain(data)
    tenant = _tenant(session)
    run = create_run(session, tenant_id=tenant, artifact={"model": segmenter.to_artifact()})
    assert run.id is not None
    written = {}
    for segment in report["segments"]:
        key = segmenter.segment_keys_[segment["label"]]
        rules = SegmentRules(
            text=" or ".join(p["text"] for p in segment["rules"]["paths"][:2]),
            fidelity=segment["rules"]["recall"],
            precision=segment["rules"]["precision"],
            paths=segment["rules"]["paths"],
        )
        stored = rules.model_dump(mode="json")
        create_segment(session, tenant_id=tenant, run_id=run.id, key=key, rules=stored)
        written[key] = rules
    loaded = load_run(session, run.id)
    assert loaded is not None
    assert loaded.rules == written
    # Each training row meets a path of the segment the surrogate predicts for it.
    first = dict(zip(NAMES, data[0].tolist(), strict=True))
    key = segmenter.predict_keys(data[:1])[0]
    path = loaded.rules[key].matching_path(first)
    assert path is not None
    assert path.text in (loaded.rules[key].text or "")


def test_a_malformed_stored_rule_stops_the_load_naming_segment_and_field(
    session: Session,
) -> None:
    segmenter, _ = _fitted()
    tenant = _tenant(session)
    run = create_run(session, tenant_id=tenant, artifact={"model": segmenter.to_artifact()})
    assert run.id is not None
    broken = {"paths": [{"text": "monetary > 800", "conditions": [{"feature": "monetary"}]}]}
    create_segment(session, tenant_id=tenant, run_id=run.id, key="a", rules=broken)
    with pytest.raises(StoredShapeError) as raised:
        load_run(session, run.id)
    message = str(raised.value)
    assert f"rules of segment 'a' of run {run.id}" in message
    assert "paths.0.conditions.0.text: Field required" in message
