"""``/v1/anomalies`` through a real segment API process: scopes, tenants, filters, pages,
malformed input, and the flags in the customer view."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from shared.auth import Scope
from shared.contracts import SEGMENT_DETECT_ANOMALIES
from shared.db import session_scope
from shared.models.anomalies import AnomalyFlag, AnomalyRun, SegmentAlert
from shared.runs import RunStatus
from tests.conftest import MakeKey
from tests.segment.builders import create_customer
from tests.support.http import auth, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
NOW = datetime.now(UTC)
READS = [
    ("GET", "/v1/anomalies"),
    ("GET", "/v1/anomalies/segments"),
    ("GET", "/v1/anomalies/runs/{run}"),
    ("GET", "/v1/anomalies/summary"),
]
WRITES = [("POST", "/v1/anomalies/runs")]


@dataclass(frozen=True)
class Flagged:
    tenant: str
    tenant_id: int
    reader: str
    admin: str
    run_id: int


def _flag(session: Session, tenant_id: int, run_id: int, pk: int, kind: str, days: int) -> None:
    session.add(
        AnomalyFlag(
            tenant_id=tenant_id,
            customer_pk=pk,
            run_id=run_id,
            kind=kind,
            reason=f"{kind} for the test",
            size=5.0,
            observed=10.0,
            expected=1.0,
            window_start=NOW - timedelta(days=30 + days),
            window_end=NOW - timedelta(days=days),
            detected_at=NOW - timedelta(days=days),
        )
    )


@pytest.fixture
def flagged(engine: Engine, make_key: MakeKey) -> Flagged:
    """A tenant with a succeeded anomaly run: four customers, five flags, one alert."""
    tenant = f"anom-{uuid.uuid4().hex[:12]}"
    reader, admin = make_key("segments:read", tenant=tenant), make_key("admin", tenant=tenant)
    tenant_id = tenant_of(engine, reader)
    with session_scope(engine) as session:
        run = AnomalyRun(tenant_id=tenant_id, status=RunStatus.SUCCEEDED, params={}, progress=1)
        session.add(run)
        session.flush()
        assert run.id is not None
        pks = [
            create_customer(session, tenant_id=tenant_id, customer_id=f"c-{i:04d}").id
            for i in range(1, 5)
        ]
        assert all(pk is not None for pk in pks)
        _flag(session, tenant_id, run.id, pks[0] or 0, "refund_burst", 1)
        _flag(session, tenant_id, run.id, pks[0] or 0, "support_surge", 1)
        _flag(session, tenant_id, run.id, pks[1] or 0, "bot_burst", 2)
        _flag(session, tenant_id, run.id, pks[2] or 0, "spend_spike", 40)
        _flag(session, tenant_id, run.id, pks[3] or 0, "refund_burst", 3)
        session.add(
            SegmentAlert(
                tenant_id=tenant_id,
                run_id=run.id,
                segmentation_run_id=1,
                segment_key="s1",
                metric="size",
                observed=180,
                expected=100,
                lower=85,
                upper=115,
                size=16,
                reason="size 180.00 is above the band",
            )
        )
        run_id = run.id
    return Flagged(tenant, tenant_id, reader, admin, run_id)


def call(client: httpx.Client, method: str, path: str, key: str) -> httpx.Response:
    if method == "POST":
        return client.post(path, json={}, headers=auth(key))
    return client.get(path, headers=auth(key))


def fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


@pytest.mark.parametrize(
    ("scope", "endpoint"),
    list(itertools.product([s.value for s in Scope], READS + WRITES)),
    ids=lambda v: v if isinstance(v, str) else f"{v[0]} {v[1]}",
)
def test_scope_matrix(
    segment_client: httpx.Client,
    flagged: Flagged,
    make_key: MakeKey,
    scope: str,
    endpoint: tuple[str, str],
) -> None:
    method, template = endpoint
    key = make_key(scope, tenant=flagged.tenant)
    response = call(segment_client, method, template.format(run=flagged.run_id), key)
    if scope == "admin" or (scope == "segments:read" and method == "GET"):
        assert response.status_code in {200, 202}, response.text
    else:
        assert response.status_code == 403, response.text


@pytest.mark.parametrize(("method", "template"), READS + WRITES)
def test_no_key_is_401(segment_client: httpx.Client, method: str, template: str) -> None:
    path = template.format(run=1)
    response = segment_client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 401


def test_flags_newest_first_with_filters_and_pages(
    segment_client: httpx.Client, flagged: Flagged
) -> None:
    headers = auth(flagged.reader)
    every = segment_client.get("/v1/anomalies", headers=headers).json()
    assert len(every["items"]) == 5
    assert every["next"] is None
    assert {item["customer_id"] for item in every["items"]} == {f"c-{i:04d}" for i in (1, 2, 3, 4)}
    assert every["items"][0]["reason"]
    assert every["items"][0]["size"] == 5.0
    refunds = segment_client.get("/v1/anomalies?kind=refund_burst", headers=headers).json()
    assert sorted(i["customer_id"] for i in refunds["items"]) == ["c-0001", "c-0004"]
    since = (NOW - timedelta(days=10)).isoformat()
    recent = segment_client.get("/v1/anomalies", params={"since": since}, headers=headers).json()
    assert "c-0003" not in {item["customer_id"] for item in recent["items"]}
    assert len(recent["items"]) == 4
    one = segment_client.get("/v1/anomalies?customer_id=c-0001", headers=headers).json()
    assert sorted(i["kind"] for i in one["items"]) == ["refund_burst", "support_surge"]
    seen: list[tuple[datetime, int]] = []
    before: int | None = None
    while True:
        params: dict[str, int] = {"limit": 2}
        if before:
            params["before"] = before
        page = segment_client.get("/v1/anomalies", params=params, headers=headers).json()
        seen += [(datetime.fromisoformat(i["detected_at"]), i["id"]) for i in page["items"]]
        if page["next"] is None:
            break
        before = page["next"]
    assert seen == sorted(seen, reverse=True)  # newest first; ids (opaque) break ties
    assert len(set(seen)) == 5


def test_segment_alerts_and_the_run(segment_client: httpx.Client, flagged: Flagged) -> None:
    headers = auth(flagged.reader)
    alerts = segment_client.get("/v1/anomalies/segments", headers=headers).json()["items"]
    assert [(a["segment_key"], a["metric"], a["observed"]) for a in alerts] == [
        ("s1", "size", 180.0)
    ]
    run = segment_client.get(f"/v1/anomalies/runs/{flagged.run_id}", headers=headers).json()
    assert run["status"] == "succeeded"


def test_summary_counts_flags_per_day_and_kind(
    segment_client: httpx.Client, flagged: Flagged
) -> None:
    summary = segment_client.get("/v1/anomalies/summary", headers=auth(flagged.reader)).json()
    counts = {(row["day"], row["kind"]): row["count"] for row in summary["by_day"]}
    today = (NOW - timedelta(days=1)).date().isoformat()
    assert counts[(today, "refund_burst")] == 1
    assert sum(counts.values()) == 5
    assert len(summary["latest"]) == 5
    short = segment_client.get("/v1/anomalies/summary?days=7", headers=auth(flagged.reader))
    assert sum(row["count"] for row in short.json()["by_day"]) == 4  # not the 40-day-old one
    bad = segment_client.get("/v1/anomalies/summary?days=0", headers=auth(flagged.reader))
    assert bad.status_code == 422


def test_the_customer_view_lists_the_customers_flags(
    segment_client: httpx.Client, flagged: Flagged
) -> None:
    headers = auth(flagged.reader)
    view = segment_client.get("/v1/customers/c-0001", headers=headers).json()
    assert sorted(a["kind"] for a in view["anomalies"]) == ["refund_burst", "support_surge"]
    quiet = segment_client.get("/v1/customers/c-0003", headers=headers).json()
    assert [a["kind"] for a in quiet["anomalies"]] == ["spend_spike"]


def test_another_tenant_sees_nothing(
    segment_client: httpx.Client, flagged: Flagged, make_key: MakeKey
) -> None:
    other = make_key("segments:read")
    headers = auth(other)
    assert segment_client.get("/v1/anomalies", headers=headers).json()["items"] == []
    by_id = segment_client.get("/v1/anomalies?customer_id=c-0001", headers=headers).json()
    assert by_id["items"] == []
    assert segment_client.get("/v1/anomalies/segments", headers=headers).json()["items"] == []
    path = f"/v1/anomalies/runs/{flagged.run_id}"
    assert segment_client.get(path, headers=headers).status_code == 404


def test_create_run_writes_the_run_and_its_outbox_row(
    segment_client: httpx.Client, flagged: Flagged, engine: Engine
) -> None:
    body = {"window_days": 14, "as_of": "2026-11-01T00:00:00Z"}
    response = segment_client.post("/v1/anomalies/runs", json=body, headers=auth(flagged.admin))
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] == "pending"
    assert run["params"]["window_days"] == 14
    assert run["params"]["requested_by"] == "test-client"
    assert response.headers["Location"] == f"/v1/anomalies/runs/{run['id']}"
    with engine.connect() as conn:
        subjects = conn.execute(
            text("SELECT subject_id FROM outbox WHERE tenant_id = :t AND task_name = :n"),
            {"t": flagged.tenant_id, "n": SEGMENT_DETECT_ANOMALIES},
        ).scalars()
        assert list(subjects) == [run["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window_days": 0}, "window_days"),
        ({"history_windows": 100}, "history_windows"),
        ({"population_share": 2}, "population_share"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"tenant_id": 1}, "tenant_id"),
        ({"requested_by": "someone"}, "requested_by"),
    ],
)
def test_create_run_refuses_bad_input(
    segment_client: httpx.Client,
    flagged: Flagged,
    engine: Engine,
    body: dict[str, object],
    field: str,
) -> None:
    response = segment_client.post("/v1/anomalies/runs", json=body, headers=auth(flagged.admin))
    assert response.status_code == 422, response.text
    assert field in fields(response)
    with engine.connect() as conn:
        runs = conn.execute(
            text("SELECT count(*) FROM anomaly_run WHERE tenant_id = :t"), {"t": flagged.tenant_id}
        ).scalar_one()
    assert runs == 1  # only the fixture's


def test_create_run_refuses_malformed_json(segment_client: httpx.Client, flagged: Flagged) -> None:
    response = segment_client.post(
        "/v1/anomalies/runs",
        content=b'{"window_days": ',
        headers={**auth(flagged.admin), "Content-Type": "application/json"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=nonsense", "kind"),
        ("since=last-tuesday", "since"),
        ("limit=0", "limit"),
        ("limit=10000", "limit"),
        ("before=-3", "before"),
        ("customer_id=", "customer_id"),
    ],
)
def test_malformed_reads_are_422_naming_the_field(
    segment_client: httpx.Client, flagged: Flagged, query: str, field: str
) -> None:
    response = segment_client.get(f"/v1/anomalies?{query}", headers=auth(flagged.reader))
    assert response.status_code == 422, response.text
    assert field in fields(response)


def test_unknown_run_is_404(segment_client: httpx.Client, flagged: Flagged) -> None:
    headers = auth(flagged.reader)
    assert segment_client.get("/v1/anomalies/runs/999999999", headers=headers).status_code == 404
    assert segment_client.get("/v1/anomalies/runs/abc", headers=headers).status_code == 422


def test_a_customers_flags_go_with_the_customer(
    segment_client: httpx.Client, flagged: Flagged, engine: Engine
) -> None:
    with session_scope(engine) as session:
        session.execute(
            text("DELETE FROM customer WHERE tenant_id = :t AND customer_id = 'c-0001'"),
            {"t": flagged.tenant_id},
        )
    items = segment_client.get("/v1/anomalies", headers=auth(flagged.reader)).json()["items"]
    assert len(items) == 3
    assert "c-0001" not in {item["customer_id"] for item in items}
