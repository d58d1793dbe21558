"""``/v1/predictions`` and the customer view's scores through the real segment API process:
scopes, tenants, malformed input, pages, CSV."""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from rich.console import Console
from sqlalchemy import Engine, text

from segmenta.churn_report import churn_risks_table
from services.segment.features import get_feature_set
from services.segment.predictions import runs
from services.segment.predictions.data import BGNBD_FEATURES
from services.segment.predictions.pipeline import BASELINE_FEATURES, train_prediction
from services.segment.predictions.runs import PredictionParams
from services.segment.settings import SegmentSettings
from shared.auth import Scope, create_api_key
from shared.contracts import SEGMENT_TRAIN_PREDICTION
from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.prediction_shop import build_history_shop
from tests.support.http import auth, count, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
SETTINGS = SegmentSettings(prediction_horizon_days=60)


@dataclass(frozen=True)
class Scored:
    tenant: str
    tenant_id: int
    run_id: int
    pending_id: int
    reader: str
    admin: str
    customers: int


@pytest.fixture(scope="module")
def scored(engine: Engine) -> Scored:
    """A shop whose churn model has run (trained in this process) and one pending run."""
    shop = build_history_shop(engine, customers=400, seed=31)
    with session_scope(engine) as session:
        params = PredictionParams.resolve(SETTINGS, model="churn")
        run_id = runs.create_run(session, tenant_id=shop.tenant_id, params=params, max_in_flight=5)
        pending = runs.create_run(session, tenant_id=shop.tenant_id, params=params, max_in_flight=5)
        tenant = session.execute(
            text("SELECT name FROM tenant WHERE id = :t"), {"t": shop.tenant_id}
        ).scalar_one()
    train_prediction(engine, SETTINGS, run_id)
    keys = {}
    for scope in ("segments:read", "admin"):
        with session_scope(engine) as session:
            keys[scope] = create_api_key(session, client="test", scopes=[scope], tenant=tenant).key
    with engine.connect() as connection:
        customers = connection.execute(
            text("SELECT count(*) FROM prediction_score WHERE run_id = :r"), {"r": run_id}
        ).scalar_one()
    return Scored(
        tenant, shop.tenant_id, run_id, pending, keys["segments:read"], keys["admin"], customers
    )


READS = [
    ("GET", "/v1/predictions"),
    ("GET", "/v1/predictions/{run}"),
    ("GET", "/v1/predictions/{run}/scores"),
    ("GET", "/v1/predictions/{run}/scores?format=csv"),
]
WRITES = [("POST", "/v1/predictions")]


def call(client: httpx.Client, method: str, path: str, key: str | None) -> httpx.Response:
    headers = auth(key) if key else {}
    if method == "POST":
        return client.post(path, json={"model": "churn"}, headers=headers)
    return client.get(path, headers=headers)


def fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


@pytest.mark.parametrize(
    ("scope", "endpoint"),
    list(itertools.product([s.value for s in Scope], READS + WRITES)),
    ids=lambda v: v if isinstance(v, str) else f"{v[0]} {v[1]}",
)
def test_scope_matrix(
    segment_client: httpx.Client,
    scored: Scored,
    make_key: MakeKey,
    scope: str,
    endpoint: tuple[str, str],
) -> None:
    method, template = endpoint
    key = make_key(scope, tenant=scored.tenant)
    allowed = scope == "admin" or (scope == "segments:read" and method == "GET")
    response = call(segment_client, method, template.format(run=scored.run_id), key)
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


def test_another_tenant_sees_nothing(
    segment_client: httpx.Client, scored: Scored, make_key: MakeKey
) -> None:
    other = make_key("admin")
    for path in (
        f"/v1/predictions/{scored.run_id}",
        f"/v1/predictions/{scored.run_id}/scores",
        f"/v1/predictions/{scored.run_id}/scores?format=csv",
        "/v1/customers/h-00001",
    ):
        response = segment_client.get(path, headers=auth(other))
        assert response.status_code == 404, path
        assert "probability" not in response.text
    listed = segment_client.get("/v1/predictions", headers=auth(other)).json()
    assert listed == {"items": [], "next": None}


def test_create_writes_the_run_and_its_outbox_row(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("admin")
    as_of = "2026-03-01T00:00:00+00:00"
    response = segment_client.post(
        "/v1/predictions",
        json={"model": "purchase_propensity", "horizon_days": 30, "as_of": as_of, "seed": 4},
        headers=auth(key),
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["Location"] == f"/v1/predictions/{body['id']}"
    assert body["status"] == "pending"
    assert body["model"] == "purchase_propensity"
    assert body["horizon_days"] == 30
    assert datetime.fromisoformat(body["as_of"]) == datetime(2026, 3, 1, tzinfo=UTC)
    assert body["params"]["requested_by"] == "test-client"
    assert body["active"] is False
    tenant_id = tenant_of(engine, key)
    assert count(engine, "outbox", tenant_id, "task_name = :n", n=SEGMENT_TRAIN_PREDICTION) == 1
    read = segment_client.get(f"/v1/predictions/{body['id']}", headers=auth(key)).json()
    assert read["id"] == body["id"]
    defaults = segment_client.post("/v1/predictions", json={"model": "churn"}, headers=auth(key))
    assert defaults.json()["horizon_days"] == 90
    assert defaults.json()["as_of"] is None


FUTURE = (datetime.now(UTC) + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "model"),
        ({"model": "clv"}, "model"),
        ({"model": "churn", "horizon_days": 0}, "horizon_days"),
        ({"model": "churn", "horizon_days": 731}, "horizon_days"),
        ({"model": "churn", "horizon_days": "soon"}, "horizon_days"),
        ({"model": "churn", "as_of": "2026-03-01T00:00:00"}, "as_of"),
        ({"model": "churn", "as_of": "yesterday"}, "as_of"),
        ({"model": "churn", "as_of": FUTURE}, "as_of"),
        ({"model": "churn", "feature_set": "v999"}, "feature_set"),
        ({"model": "churn", "feature_set": "V 1"}, "feature_set"),
        ({"model": "churn", "seed": -1}, "seed"),
        ({"model": "churn", "tenant_id": 1}, "tenant_id"),
        ({"model": "churn", "status": "succeeded"}, "status"),
        ([], "body"),
    ],
)
def test_create_refuses_bad_input(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine, body: Any, field: str
) -> None:
    key = make_key("admin")
    response = segment_client.post("/v1/predictions", json=body, headers=auth(key))
    assert response.status_code == 422, response.text
    assert field in fields(response)
    assert count(engine, "prediction_run", tenant_of(engine, key)) == 0
    assert count(engine, "outbox", tenant_of(engine, key)) == 0


def test_create_refuses_malformed_json(segment_client: httpx.Client, make_key: MakeKey) -> None:
    response = segment_client.post(
        "/v1/predictions",
        content=b'{"model": ',
        headers={**auth(make_key("admin")), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"]


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/v1/predictions/0", 422, "prediction_id"),
        ("/v1/predictions/x", 422, "prediction_id"),
        ("/v1/predictions/999999999", 404, "prediction_id"),
        ("/v1/predictions?limit=0", 422, "limit"),
        ("/v1/predictions/{run}/scores?limit=1001", 422, "limit"),
        ("/v1/predictions/{run}/scores?after=-1", 422, "after"),
        ("/v1/predictions/{run}/scores?format=xml", 422, "format"),
        ("/v1/predictions/999999999/scores?format=csv", 404, "prediction_id"),
        ("/v1/predictions/{pending}/scores", 409, "status"),
        ("/v1/predictions/{pending}/scores?format=csv", 409, "status"),
    ],
)
def test_unknown_and_malformed_reads(
    segment_client: httpx.Client, scored: Scored, path: str, status: int, field: str
) -> None:
    url = path.format(run=scored.run_id, pending=scored.pending_id)
    response = segment_client.get(url, headers=auth(scored.reader))
    assert response.status_code == status, response.text
    assert field in fields(response)


def test_a_run_with_its_figures(segment_client: httpx.Client, scored: Scored) -> None:
    body = segment_client.get(
        f"/v1/predictions/{scored.run_id}", headers=auth(scored.reader)
    ).json()
    assert body["status"] == "succeeded"
    assert body["active"] is True
    assert {"auc", "pr_auc", "ece", "brier", "calibration", "baselines"} <= set(body["metrics"])
    assert set(body["metrics"]["baselines"]) == {"recency_only", "bgnbd_expected_purchases"}
    assert body["artifact"]["reliability"]["calibrated"][0].keys() == {
        "predicted",
        "observed",
        "count",
    }
    assert body["data_window"]["scored"] == scored.customers


def test_scores_page_by_page_each_once(segment_client: httpx.Client, scored: Scored) -> None:
    seen: list[str] = []
    after, pages = 0, 0
    while True:
        page = segment_client.get(
            f"/v1/predictions/{scored.run_id}/scores?limit=150&after={after}",
            headers=auth(scored.reader),
        ).json()
        pages += 1
        seen += [item["customer_id"] for item in page["items"]]
        for item in page["items"]:
            assert 0 < item["probability"] < 1
            assert item["reasons"]
            assert item["expected_spend"] is None  # churn has no spend
        if page["next"] is None:
            break
        after = page["next"]
    assert len(seen) == len(set(seen)) == scored.customers
    assert pages == -(-scored.customers // 150)


def test_scores_as_csv_stream_every_customer(segment_client: httpx.Client, scored: Scored) -> None:
    with segment_client.stream(
        "GET", f"/v1/predictions/{scored.run_id}/scores?format=csv", headers=auth(scored.reader)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        body = response.read().decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["customer_id", "probability"]
    assert len(rows) - 1 == scored.customers
    assert len({row[0] for row in rows[1:]}) == scored.customers
    assert all(0 < float(row[1]) < 1 for row in rows[1:])


def test_the_customer_view_shows_the_active_scores_and_reasons(
    segment_client: httpx.Client, scored: Scored
) -> None:
    page = segment_client.get(
        f"/v1/predictions/{scored.run_id}/scores?limit=1", headers=auth(scored.reader)
    ).json()
    item = page["items"][0]
    body = segment_client.get(
        f"/v1/customers/{item['customer_id']}", headers=auth(scored.reader)
    ).json()
    (churn,) = body["predictions"]
    assert churn["model"] == "churn"
    assert churn["prediction_id"] == scored.run_id
    assert churn["probability"] == pytest.approx(item["probability"])
    assert churn["reasons"] == item["reasons"]
    known = {f.name for f in get_feature_set("v1").features} | set(BGNBD_FEATURES)
    assert {reason["feature"] for reason in churn["reasons"]} <= known
    # One churn figure: the score's churn is the active model's probability.
    assert body["scores"]["churn"] == pytest.approx(item["probability"])


def test_a_customer_never_scored_has_no_predictions(
    segment_client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    key = make_key("segments:read")
    with session_scope(engine) as session:
        session.execute(
            text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, :c)"),
            {"t": tenant_of(engine, key), "c": f"new-{uuid.uuid4().hex[:6]}"},
        )
        cid = session.execute(
            text("SELECT customer_id FROM customer WHERE tenant_id = :t"),
            {"t": tenant_of(engine, key)},
        ).scalar_one()
    body = segment_client.get(f"/v1/customers/{cid}", headers=auth(key)).json()
    assert body["predictions"] == []
    assert body["scores"] is None


def test_the_dashboard_page_has_the_predictions_section(segment_client: httpx.Client) -> None:
    page = segment_client.get("/dashboard").text
    assert 'id="predictions-card"' in page
    assert "/dashboard/static/predictions.js" in page
    script = segment_client.get("/dashboard/static/predictions.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/v1/predictions" in script.text


def test_the_demo_prints_the_top_churn_risks_with_reasons(
    segment_client: httpx.Client, scored: Scored, engine: Engine
) -> None:
    run = segment_client.get(f"/v1/predictions/{scored.run_id}", headers=auth(scored.reader)).json()
    console = Console(record=True, width=200)
    console.print(churn_risks_table(engine, run, top=5))
    printed = console.export_text()
    with engine.connect() as connection:
        riskiest = (
            connection.execute(
                text(
                    "SELECT c.customer_id FROM prediction_score s JOIN customer c"
                    " ON c.id = s.customer_pk WHERE s.run_id = :r"
                    " ORDER BY s.probability DESC, s.customer_pk LIMIT 5"
                ),
                {"r": scored.run_id},
            )
            .scalars()
            .all()
        )
    assert f"run {scored.run_id}" in printed
    positions = [printed.index(customer_id) for customer_id in riskiest]
    assert positions == sorted(positions)  # the riskiest first
    # A reason names a feature: the trees' (recency or purchase ages), or the one feature
    # of the baseline served in their place.
    served = run["metrics"]["served"]
    assert ("days" if served == "model" else BASELINE_FEATURES[served]) in printed
