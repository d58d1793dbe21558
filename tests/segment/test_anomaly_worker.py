"""An anomaly run end to end with the segment workers: a demo shop with planted
anomalies goes in through the ingest API, the run is relayed to the runs worker, and the
planted customers come back flagged, with reasons, through the segment API."""

from __future__ import annotations

import csv
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from segmenta.client import upload
from segmenta.demo.anomalies import TRUTH_FILE
from segmenta.demo.generate import DEFAULT_NOW, generate
from services.segment.anomalies.params import AnomalyParams
from services.segment.anomalies.runs import create_run
from shared.auth import create_api_key
from shared.contracts import SEGMENT_DETECT_ANOMALIES, queue_for
from shared.db import session_scope
from tests.conftest import MakeKey
from tests.support.http import auth, tenant_of
from tests.support.servers import start_worker
from tests.support.stack import ServiceStack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KINDS = ("customers", "products", "orders", "events", "reviews", "transcripts")


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


@pytest.fixture(scope="module")
def stack(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    stack_env = {
        **env,
        "SEGMENTA_RELAY_STALE_AFTER_S": "5",
        "SEGMENTA_SEGMENT_RETRAIN_EVERY_S": "0",
        "SEGMENTA_SEGMENT_ANOMALY_EVERY_S": "0",
    }
    logs = tmp_path_factory.mktemp("anomalies")
    stack = ServiceStack("segment", stack_env, logs)
    runs = start_worker(
        "services.segment.worker", queue_for(SEGMENT_DETECT_ANOMALIES), stack_env, logs / "runs.log"
    )
    yield stack
    runs.stop()
    stack.stop()


def test_a_run_flags_the_planted_customers(
    stack: ServiceStack,
    api: str,
    engine: Engine,
    segment_client: httpx.Client,
    make_key: MakeKey,
    tmp_path: Path,
) -> None:
    tenant = f"anomalies-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        key = create_api_key(session, client="shop", scopes=["ingest:write"], tenant=tenant).key
    generate(500, 11, tmp_path)
    for kind in KINDS:
        upload(api, key, kind, tmp_path / f"{kind}.jsonl", quiet=True)
    planted: dict[str, set[str]] = defaultdict(set)
    with (tmp_path / TRUTH_FILE).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            planted[row["kind"]].add(row["customer_id"])
    tenant_id = tenant_of(engine, key)
    vectors = "SELECT count(*) FROM customer_features WHERE tenant_id = :t"
    wait_until(
        lambda: rows(engine, vectors, t=tenant_id)[0][0] == 500,
        300,
        f"the shop's features\n{stack.worker_output()}",
    )
    with session_scope(engine) as session:
        run_id = create_run(
            session,
            tenant_id=tenant_id,
            params=AnomalyParams(as_of=DEFAULT_NOW, requested_by="test"),
            max_in_flight=3,
        )
    logs = f"{stack.worker_output()}\n--- runs ---\n{(stack.logs / 'runs.log').read_text()}"
    wait_until(
        lambda: (
            rows(engine, "SELECT status FROM anomaly_run WHERE id = :r", r=run_id)[0][0]
            in {"succeeded", "failed"}
        ),
        300,
        f"anomaly run {run_id} to finish\n{logs}",
    )
    ((status, error, metrics, window),) = rows(
        engine,
        "SELECT status, error, metrics, data_window FROM anomaly_run WHERE id = :r",
        r=run_id,
    )
    assert status == "succeeded", error
    assert metrics["customers"] == 500
    assert window["as_of"].startswith("2026-11-01")
    # Every customer ranked by the population score, the most unusual at 1.
    ((scored, top),) = rows(
        engine,
        "SELECT count(*), max(anomaly) FROM customer_score "
        "WHERE tenant_id = :t AND anomaly BETWEEN 0 AND 1",
        t=tenant_id,
    )
    assert scored == 500
    assert top == 1.0
    reader = make_key("segments:read", tenant=tenant)
    found: dict[str, set[str]] = {}
    for kind in planted:
        answer = segment_client.get(
            "/v1/anomalies", params={"kind": kind, "limit": 500}, headers=auth(reader)
        )
        found[kind] = {item["customer_id"] for item in answer.json()["items"]}
        assert len(found[kind]) <= 3 * len(planted[kind]), (kind, found[kind])
    assert len(planted) == 6  # every kind was planted
    for kind in ("bot_burst", "refund_burst"):  # unmistakable: every one is found
        assert planted[kind] <= found[kind], (kind, planted[kind], found[kind])
    hits = sum(len(planted[kind] & found[kind]) for kind in planted)
    assert hits >= 0.6 * sum(len(ids) for ids in planted.values()), found
    one = sorted(planted["bot_burst"])[0]
    view = segment_client.get(f"/v1/customers/{one}", headers=auth(reader)).json()
    assert "bot_burst" in {flag["kind"] for flag in view["anomalies"]}
    assert "events within one hour" in view["anomalies"][0]["reason"]
    # A steady customer of the shop is not flagged for anything.
    flagged_pks = rows(
        engine, "SELECT DISTINCT customer_pk FROM anomaly_flag WHERE run_id = :r", r=run_id
    )
    assert len(flagged_pks) < 0.1 * 500
