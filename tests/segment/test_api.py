"""The segment API through a real process: scopes, tenants, runs, segments, customers."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.auth import Scope
from shared.contracts import SEGMENT_ACTIVATE_SEGMENTATION, SEGMENT_TRAIN_SEGMENTATION
from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.builders import (
    FEATURE_NAMES,
    NOW,
    SEGMENTS,
    add_analysis,
    add_history,
    create_customer,
    create_run,
    create_segment,
)
from tests.segment.conftest import ShopKeys
from tests.support.http import auth, count, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

READS = [
    ("GET", "/v1/segmentations"),
    ("GET", "/v1/segmentations/{run}"),
    ("GET", "/v1/segmentations/{run}/report"),
    ("GET", "/v1/segments"),
    ("GET", "/v1/segments/s1/customers"),
    ("GET", "/v1/segments/s1/history"),
    ("GET", "/v1/customers/c-0001"),
    ("GET", "/v1/dashboard/data"),
]
WRITES = [("POST", "/v1/segmentations"), ("POST", "/v1/segmentations/{run}/activate")]


def call(client: httpx.Client, method: str, path: str, key: str | None) -> httpx.Response:
    headers = auth(key) if key else {}
    if method == "POST":
        return client.post(
            path, json={} if path.endswith("segmentations") else None, headers=headers
        )
    return client.get(path, headers=headers)


def outbox_rows(engine: Engine, tenant_id: int, task_name: str) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT subject_id FROM outbox WHERE tenant_id = :t AND task_name = :n"),
            {"t": tenant_id, "n": task_name},
        )
        return [row[0] for row in rows]


def fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


@pytest.mark.parametrize(
    ("scope", "endpoint"),
    list(itertools.product([s.value for s in Scope], READS + WRITES)),
    ids=lambda v: v if isinstance(v, str) else f"{v[0]} {v[1]}",
)
def test_scope_matrix(
    segment_client: httpx.Client,
    shop: ShopKeys,
    make_key: MakeKey,
    engine: Engine,
    scope: str,
    endpoint: tuple[str, str],
) -> None:
    method, template = endpoint
    path = template.format(run=shop.shop.previous_run_id)
    tenant = _tenant_name(engine, shop.reader)
    key = make_key(scope, tenant=tenant)
    allowed = scope == "admin" or (scope == "segments:read" and method == "GET")
    response = call(segment_client, method, path, key)
    if allowed:
        assert response.status_code in {200, 202}, response.text
    else:
        assert response.status_code == 403, response.text
        assert "scope" in response.json()["detail"]


@pytest.mark.parametrize(("method", "template"), READS + WRITES)
def test_no_key_is_401(segment_client: httpx.Client, method: str, template: str) -> None:
    response = call(segment_client, method, template.format(run=1), None)
    assert response.status_code == 401
    assert fields(response) == {"Authorization"}


def _tenant_name(engine: Engine, key: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT name FROM tenant WHERE id = :t"), {"t": tenant_of(engine, key)}
            ).scalar_one()
        )


def test_another_tenant_sees_nothing(
    segment_client: httpx.Client, shop: ShopKeys, make_key: MakeKey
) -> None:
    other_reader, other_admin = make_key("segments:read"), make_key("admin")
    run = shop.shop.run_id
    for path in (
        f"/v1/segmentations/{run}",
        f"/v1/segmentations/{run}/report",
        f"/v1/segmentations/{run}/changes?against={shop.shop.previous_run_id}",
        "/v1/segments/s1/customers",
        "/v1/segments/s1/history",
        "/v1/customers/c-0001",
    ):
        assert segment_client.get(path, headers=auth(other_reader)).status_code == 404, path
    listed = segment_client.get("/v1/segmentations", headers=auth(other_reader)).json()
    assert listed == {"items": [], "next": None}
    segments = segment_client.get("/v1/segments", headers=auth(other_reader)).json()
    assert segments["segments"] == []
    assert segments["segmentation_id"] is None
    data = segment_client.get("/v1/dashboard/data", headers=auth(other_reader)).json()
    assert data["run"] is None
    assert data["clv"] is None
    activate = segment_client.post(f"/v1/segmentations/{run}/activate", headers=auth(other_admin))
    assert activate.status_code == 404


def test_segments_of_the_active_run(segment_client: httpx.Client, shop: ShopKeys) -> None:
    response = segment_client.get("/v1/segments", headers=auth(shop.reader))
    assert response.status_code == 200
    body = response.json()
    assert body["segmentation_id"] == shop.shop.run_id
    assert body["total_customers"] == 40
    assert [s["name"] for s in body["segments"]] == [spec.name for spec in SEGMENTS]
    assert sum(s["size"] for s in body["segments"]) == 40
    assert sum(s["share"] for s in body["segments"]) == pytest.approx(1.0)
    top = body["segments"][0]
    assert top["rules"] == {
        "text": "frequency > 6 and recency_days <= 45",
        "fidelity": 0.91,
        "precision": None,
        # Older rows have no coverage field: their fidelity is the coverage.
        "coverage": 0.91,
        "low_coverage": False,
    }
    assert top["profile"][0] == {
        "name": "monetary",
        "label": "total spend",
        "unit": "money",
        "mean": 12.1,
        "population_mean": 10.0,
        "lift": 2.1,
    }
    assert top["stats"]["mean_clv"] == 1800.0


def test_segments_read_the_modeling_librarys_shapes(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    """Features keyed by name, rules as surrogate-tree paths, missing stats: all shown."""
    key = make_key("segments:read")
    tenant_id = tenant_of(engine, key)
    with session_scope(engine) as session:
        run = create_run(session, tenant_id=tenant_id, active=True, metrics=None, artifact=None)
        assert run.id is not None
        create_segment(
            session,
            tenant_id=tenant_id,
            run_id=run.id,
            key="a",
            name="Whales",
            size=3,
            profile={
                "features": {
                    "monetary": {"mean": 900.0, "population_mean": 300.0, "lift": 1.7},
                    "recency_days": {"mean": 20.0, "population_mean": 60.0, "lift": -2.2},
                }
            },
            rules={
                "recall": 0.8,
                "precision": 0.9,
                "paths": [
                    {"text": "monetary > 800"},
                    {"text": "frequency > 9 and monetary > 500"},
                ],
            },
            stats={"size": 3, "share": 0.75, "mean_clv": "n/a"},
        )
        create_segment(session, tenant_id=tenant_id, run_id=run.id, key="b", name="Rest", size=1)
    body = segment_client.get("/v1/segments", headers=auth(key)).json()
    whales, rest = body["segments"]
    assert [f["name"] for f in whales["profile"]] == ["recency_days", "monetary"]
    assert whales["rules"] == {
        "text": "(monetary > 800) or (frequency > 9 and monetary > 500)",
        "fidelity": 0.8,
        "precision": 0.9,
        "coverage": 0.8,
        "low_coverage": False,
    }
    assert whales["share"] == 0.75
    assert whales["stats"]["mean_clv"] is None
    assert rest["share"] == 0.25
    assert rest["rules"] == {
        "text": None,
        "fidelity": None,
        "precision": None,
        "coverage": None,
        "low_coverage": False,
    }
    data = segment_client.get("/v1/dashboard/data", headers=auth(key)).json()
    assert data["projection"] is None
    assert data["k_curve"] == []
    assert data["profiles"]["features"] == ["recency_days", "monetary"]
    assert data["profiles"]["lifts"] == [[-2.2, 1.7], [None, None]]


def test_segments_without_an_active_run(segment_client: httpx.Client, make_key: MakeKey) -> None:
    body = segment_client.get("/v1/segments", headers=auth(make_key("segments:read"))).json()
    assert body["segmentation_id"] is None
    assert body["segments"] == []
    assert "POST /v1/segmentations" in body["message"]


def test_create_segmentation_writes_the_run_and_its_outbox_row(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("admin")
    tenant_id = tenant_of(engine, key)
    response = segment_client.post(
        "/v1/segmentations",
        json={"algorithm": "gmm", "k": 5, "seed": 11, "sample_size": 500, "promote": "never"},
        headers=auth(key),
    )
    assert response.status_code == 202, response.text
    run = response.json()
    assert response.headers["location"] == f"/v1/segmentations/{run['id']}"
    assert run["status"] == "pending"
    assert run["active"] is False
    assert run["algorithm"] == "gmm"
    assert run["seed"] == 11
    assert run["params"] == {
        "algorithm": "gmm",
        "k": 5,
        "feature_set": "v1",
        "seed": 11,
        "sample_size": 500,
        "promote": "never",
        "requested_by": "test-client",
    }
    assert outbox_rows(engine, tenant_id, SEGMENT_TRAIN_SEGMENTATION) == [run["id"]]
    assert count(engine, "segmentation_run", tenant_id, "status = 'pending'") == 1


def test_create_segmentation_takes_the_service_defaults(
    segment_client: httpx.Client, make_key: MakeKey
) -> None:
    run = segment_client.post("/v1/segmentations", json={}, headers=auth(make_key("admin")))
    assert run.status_code == 202
    params = run.json()["params"]
    assert (params["algorithm"], params["k"], params["feature_set"]) == ("kmeans", "auto", "v1")
    assert params["promote"] == "auto"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"algorithm": "magic"}, "algorithm"),
        ({"colour": "red"}, "colour"),
        ({"tenant_id": 1}, "tenant_id"),
        ({"k": 1}, "k"),
        ({"k": 31}, "k"),
        ({"k": "many"}, "k"),
        ({"k": True}, "k"),
        ({"feature_set": "v999"}, "feature_set"),
        ({"feature_set": "V 1"}, "feature_set"),
        ({"algorithm": "dbscan", "k": 4}, "k"),
        ({"sample_size": 10}, "sample_size"),
        ({"seed": -1}, "seed"),
        ({"promote": "maybe"}, "promote"),
        ({"skip_if_unchanged": "perhaps"}, "skip_if_unchanged"),
        ({"skip_if_unchanged": [True]}, "skip_if_unchanged"),
        ([], "body"),
    ],
)
def test_create_segmentation_refuses_bad_input(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine, body: Any, field: str
) -> None:
    key = make_key("admin")
    response = segment_client.post("/v1/segmentations", json=body, headers=auth(key))
    assert response.status_code == 422, response.text
    assert field in fields(response)
    assert count(engine, "segmentation_run", tenant_of(engine, key)) == 0
    assert count(engine, "outbox", tenant_of(engine, key)) == 0


def test_create_segmentation_refuses_a_large_body(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("admin")
    body = b'{"feature_set": "' + b"v" * 20_000 + b'"}'
    response = segment_client.post(
        "/v1/segmentations",
        content=body,
        headers={**auth(key), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert count(engine, "segmentation_run", tenant_of(engine, key)) == 0


def test_create_segmentation_refuses_malformed_json(
    segment_client: httpx.Client, make_key: MakeKey
) -> None:
    response = segment_client.post(
        "/v1/segmentations",
        content=b'{"k": ',
        headers={**auth(make_key("admin")), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"]


def test_activate_only_a_succeeded_run(
    segment_client: httpx.Client, shop: ShopKeys, engine: Engine
) -> None:
    tenant_id = shop.shop.tenant_id
    with session_scope(engine) as session:
        pending = create_run(session, tenant_id=tenant_id, status="pending", finished_at=None)
        failed = create_run(session, tenant_id=tenant_id, status="failed", error="boom")
    for run in (pending, failed):
        response = segment_client.post(
            f"/v1/segmentations/{run.id}/activate", headers=auth(shop.admin)
        )
        assert response.status_code == 409
        assert f"is {run.status}" in response.json()["detail"]
        assert "only a succeeded run" in response.json()["detail"]
    assert outbox_rows(engine, tenant_id, SEGMENT_ACTIVATE_SEGMENTATION) == []

    previous = shop.shop.previous_run_id
    response = segment_client.post(
        f"/v1/segmentations/{previous}/activate", headers=auth(shop.admin)
    )
    assert response.status_code == 202
    assert response.json()["id"] == previous
    assert outbox_rows(engine, tenant_id, SEGMENT_ACTIVATE_SEGMENTATION) == [previous]

    missing = segment_client.post("/v1/segmentations/999999999/activate", headers=auth(shop.admin))
    assert missing.status_code == 404
    assert fields(missing) == {"segmentation_id"}
    bad = segment_client.post("/v1/segmentations/abc/activate", headers=auth(shop.admin))
    assert bad.status_code == 422
    assert fields(bad) == {"segmentation_id"}


def test_runs_newest_first_page_by_page(
    segment_client: httpx.Client, shop: ShopKeys, engine: Engine
) -> None:
    with session_scope(engine) as session:
        runs = [create_run(session, tenant_id=shop.shop.tenant_id) for _ in range(3)]
    extra = [run.id for run in runs if run.id is not None]
    expected = [*reversed(extra), shop.shop.run_id, shop.shop.previous_run_id]
    seen: list[int] = []
    before = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"before": before} if before else {})
        page = segment_client.get("/v1/segmentations", params=params, headers=auth(shop.reader))
        assert page.status_code == 200
        seen += [run["id"] for run in page.json()["items"]]
        before = page.json()["next"]
        if before is None:
            break
    assert seen == expected

    run = segment_client.get(f"/v1/segmentations/{shop.shop.run_id}", headers=auth(shop.reader))
    body = run.json()
    assert body["status"] == "succeeded"
    assert body["active"] is True
    assert [s["key"] for s in body["segments"]] == ["s1", "s2", "s3", "s4"]
    assert set(body["segments"][0]) == {"key", "name", "size"}
    assert [p["k"] for p in body["metrics"]["k_curve"]] == [2, 3, 4, 5, 6]
    assert body["library_versions"]["scikit-learn"] == "1.5"
    assert "artifact" not in body


def test_members_page_by_page_each_once(segment_client: httpx.Client, shop: ShopKeys) -> None:
    expected = shop.shop.members["s1"]
    seen: list[str] = []
    after = 0
    pages = 0
    while True:
        page = segment_client.get(
            "/v1/segments/s1/customers",
            params={"limit": 5, "after": after},
            headers=auth(shop.reader),
        ).json()
        pages += 1
        assert len(page["items"]) <= 5
        seen += [item["customer_id"] for item in page["items"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))
    assert pages == -(-len(expected) // 5)
    member = segment_client.get("/v1/segments/s2/customers", headers=auth(shop.reader)).json()
    assert set(member["items"][0]) == {"customer_id", "since", "clv", "p_alive"}
    assert member["items"][0]["clv"] > 0


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/v1/segments/s9/customers", 404, "key"),
        ("/v1/segments/s1/customers?limit=0", 422, "limit"),
        ("/v1/segments/s1/customers?after=-1", 422, "after"),
        ("/v1/segments/s9/history", 404, "key"),
        ("/v1/segmentations?limit=1000", 422, "limit"),
        ("/v1/segmentations/0", 422, "segmentation_id"),
        ("/v1/segmentations/999999999", 404, "segmentation_id"),
        ("/v1/customers/nobody", 404, "customer_id"),
    ],
)
def test_unknown_and_malformed_reads(
    segment_client: httpx.Client, shop: ShopKeys, path: str, status: int, field: str
) -> None:
    response = segment_client.get(path, headers=auth(shop.reader))
    assert response.status_code == status, response.text
    assert field in fields(response)


def test_members_without_an_active_run(segment_client: httpx.Client, make_key: MakeKey) -> None:
    response = segment_client.get("/v1/segments/s1/customers", headers=auth(make_key("admin")))
    assert response.status_code == 404
    assert "no active segmentation" in response.json()["detail"]


def test_segment_history(segment_client: httpx.Client, shop: ShopKeys, engine: Engine) -> None:
    pk = shop.shop.customer_pks[shop.shop.members["s1"][0]]
    with session_scope(engine) as session:
        add_history(
            session,
            tenant_id=shop.shop.tenant_id,
            customer_pk=pk,
            from_key="s1",
            to_key="s3",
            changed_at=NOW - timedelta(hours=1),
            run_id=shop.shop.run_id,
        )
        add_history(
            session,
            tenant_id=shop.shop.tenant_id,
            customer_pk=pk,
            from_key="s2",
            to_key="s1",
            changed_at=NOW - timedelta(days=200),
            run_id=shop.shop.run_id,
        )
    body = segment_client.get("/v1/segments/s1/history", headers=auth(shop.reader)).json()
    assert [s["segmentation_id"] for s in body["sizes"]] == [
        shop.shop.previous_run_id,
        shop.shop.run_id,
    ]
    assert body["sizes"][1]["size"] == 16
    assert body["sizes"][1]["active"] is True
    assert sum(f["entries"] for f in body["flows"]) == 16  # the 200-day-old entry is out
    assert sum(f["exits"] for f in body["flows"]) == 1
    days = [f["day"] for f in body["flows"]]
    assert days == sorted(days)


def test_one_customer(segment_client: httpx.Client, shop: ShopKeys, engine: Engine) -> None:
    customer_id = shop.shop.members["s3"][0]
    pk = shop.shop.customer_pks[customer_id]
    tenant_id = shop.shop.tenant_id
    with session_scope(engine) as session:
        for i, (kind, score, label) in enumerate(
            [
                ("review", 0.8, "positive"),
                ("review", -0.4, "negative"),
                ("transcript", -0.6, "negative"),
            ]
        ):
            add_analysis(
                session,
                tenant_id=tenant_id,
                customer_pk=pk,
                source_pk=1000 + i,
                source_kind=kind,
                score=score,
                label=label,
                occurred_at=NOW - timedelta(days=3 - i),
            )
        # An older model's analysis of the same review is not counted twice.
        add_analysis(
            session,
            tenant_id=tenant_id,
            customer_pk=pk,
            source_pk=1000,
            model_version="old",
            score=-1.0,
            label="negative",
            analyzed_at=NOW - timedelta(days=30),
        )
        for day in range(12):
            add_history(
                session,
                tenant_id=tenant_id,
                customer_pk=pk,
                from_key="s1",
                to_key="s3",
                changed_at=NOW - timedelta(days=30 + day),
                run_id=shop.shop.previous_run_id,
            )
    response = segment_client.get(f"/v1/customers/{customer_id}", headers=auth(shop.reader))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == customer_id
    assert body["feature_set"] == "v1"
    assert list(body["features"]) == FEATURE_NAMES
    assert body["segment"]["key"] == "s3"
    assert body["segment"]["name"] == "At-risk regulars"
    assert body["segment"]["reason"]["rule"] == "recency_days > 120 and monetary > 800"
    assert set(body["scores"]) >= {"clv", "p_alive", "expected_purchases", "churn", "anomaly"}
    # The CLV features are the latest scores, read with the stored vector.
    assert body["features"]["clv"] == pytest.approx(body["scores"]["clv"])
    assert body["features"]["p_alive"] == pytest.approx(body["scores"]["p_alive"])
    reviews, transcripts = body["sentiment"]["reviews"], body["sentiment"]["transcripts"]
    assert reviews["count"] == 2
    assert reviews["mean_score"] == pytest.approx(0.2)
    assert reviews["last_label"] == "negative"
    assert (transcripts["count"], transcripts["last_label"]) == (1, "negative")
    assert len(body["history"]) == 10
    changed = [entry["changed_at"] for entry in body["history"]]
    assert changed == sorted(changed, reverse=True)


def test_a_customer_before_any_segmentation(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("segments:read")
    with session_scope(engine) as session:
        create_customer(session, tenant_id=tenant_of(engine, key), customer_id="fresh")
    body = segment_client.get("/v1/customers/fresh", headers=auth(key)).json()
    assert body["features"] is None
    assert body["segment"] is None
    assert body["scores"] is None
    assert body["sentiment"]["reviews"] == {
        "count": 0,
        "mean_score": None,
        "last_label": None,
        "last_at": None,
    }
    assert body["history"] == []


def test_dashboard_data(segment_client: httpx.Client, shop: ShopKeys) -> None:
    response = segment_client.get("/v1/dashboard/data", headers=auth(shop.reader))
    assert response.status_code == 200
    data = response.json()
    assert data["message"] is None
    assert data["run"]["id"] == shop.shop.run_id
    assert data["run"]["customers"] == 40
    assert data["run"]["metrics"]["ari_previous"] == 0.78
    assert data["run"]["metrics"]["previous_run_id"] == shop.shop.previous_run_id
    # The built runs store no fitted model: the page is told so rather than asking for the
    # changes and getting a 409.
    assert "no stored model" in data["run"]["changes_note"]
    changes = f"/v1/segmentations/{shop.shop.run_id}/changes?against={shop.shop.previous_run_id}"
    assert segment_client.get(changes, headers=auth(shop.reader)).status_code == 409
    assert [s["key"] for s in data["segments"]] == ["s1", "s2", "s3", "s4"]
    assert data["segments"][0]["rule"] == "frequency > 6 and recency_days <= 45"
    assert len(data["projection"]["x"]) == len(data["projection"]["keys"]) == 40
    assert data["profiles"]["keys"] == ["s1", "s2", "s3", "s4"]
    assert len(data["profiles"]["lifts"][0]) == len(data["profiles"]["features"])
    assert data["dendrogram"] is None
    assert [p["k"] for p in data["k_curve"]] == [2, 3, 4, 5, 6]
    assert [run["id"] for run in data["history"]] == [shop.shop.previous_run_id, shop.shop.run_id]
    clv = data["clv"]
    assert clv["count"] == 40
    assert sum(sum(s["counts"]) for s in clv["series"]) == 40
    assert len(clv["edges"]) == len(clv["series"][0]["counts"]) + 1
    assert {s["key"] for s in clv["series"]} == {"s1", "s2", "s3", "s4"}
    assert [run["id"] for run in data["recent_runs"]] == [
        shop.shop.run_id,
        shop.shop.previous_run_id,
    ]


def test_health_and_metrics(segment_client: httpx.Client) -> None:
    assert segment_client.get("/healthz").json() == {"status": "ok"}
    assert segment_client.get("/readyz").status_code == 200
    assert "segmenta_http_request_seconds" in segment_client.get("/metrics").text


def test_dashboard_page_and_assets_need_no_key(segment_client: httpx.Client) -> None:
    page = segment_client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "/dashboard/static/plotly-" in page.text
    plotly_path = page.text.split('src="')[1].split('"')[0]
    plotly = segment_client.get(plotly_path, headers={"accept-encoding": "gzip"})
    assert plotly.status_code == 200
    assert plotly.headers["content-encoding"] == "gzip"
    assert "immutable" in plotly.headers["cache-control"]
    again = segment_client.get(plotly_path, headers={"if-none-match": plotly.headers["etag"]})
    assert again.status_code == 304
    assert segment_client.get("/dashboard/static/dashboard.js").status_code == 200
    assert segment_client.get("/dashboard/static/secrets.txt").status_code == 404
