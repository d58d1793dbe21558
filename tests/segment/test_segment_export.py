"""``GET /v1/segments/{key}/export`` through a real segment API process."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, text

from services.segment.segments.export import PAGE_SIZE
from shared.auth import Scope
from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.builders import create_run, create_segment
from tests.support.http import auth, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

BIG = PAGE_SIZE * 2 + 17  # three pages
RISKY_IDS = ('=HYPERLINK("http://x")', "+1+2", "-3", "@SUM(A1)", "\tcell", "plain-id")

_ADD_MEMBERS = text(
    """
    WITH made AS (
        INSERT INTO customer (tenant_id, customer_id)
        SELECT :tenant, unnest(CAST(:ids AS text[]))
        RETURNING id, customer_id
    ), scored AS (
        INSERT INTO customer_score (customer_pk, tenant_id, clv, p_alive, churn)
        SELECT id, :tenant, 10.5, 0.8, 0.2 FROM made
    )
    INSERT INTO segment_membership (customer_pk, tenant_id, run_id, segment_key, since)
    SELECT id, :tenant, :run, :key, now() FROM made
    """
)


@dataclass(frozen=True)
class ExportShop:
    reader: str
    tenant: str
    big_ids: set[str]


@pytest.fixture
def export_shop(engine: Engine, make_key: MakeKey) -> ExportShop:
    tenant = f"export-{uuid.uuid4().hex[:12]}"
    reader = make_key("segments:read", tenant=tenant)
    tenant_id = tenant_of(engine, reader)
    big_ids = [f"big-{i:05d}" for i in range(BIG)]
    with session_scope(engine) as session:
        run_id = create_run(session, tenant_id=tenant_id, active=True).id
        assert run_id is not None
        for key, ids in (("big", big_ids), ("risky", list(RISKY_IDS))):
            create_segment(session, tenant_id=tenant_id, run_id=run_id, key=key, size=len(ids))
            params = {"tenant": tenant_id, "ids": ids, "run": run_id, "key": key}
            session.execute(_ADD_MEMBERS, params)
    return ExportShop(reader=reader, tenant=tenant, big_ids=set(big_ids))


def export(client: httpx.Client, key: str, segment: str, **params: str) -> httpx.Response:
    return client.get(f"/v1/segments/{segment}/export", params=params, headers=auth(key))


def test_csv_streams_every_member_once(
    segment_client: httpx.Client, export_shop: ExportShop
) -> None:
    with segment_client.stream(
        "GET", "/v1/segments/big/export", headers=auth(export_shop.reader)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "content-length" not in response.headers  # sent in chunks as it is read
        assert response.headers["transfer-encoding"] == "chunked"
        assert 'filename="segment-big.csv"' in response.headers["content-disposition"]
        body = "".join(response.iter_text())
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0]) == ["customer_id", "segment", "since", "clv", "p_alive", "churn"]
    ids = [row["customer_id"] for row in rows]
    assert len(ids) == BIG
    assert set(ids) == export_shop.big_ids
    assert {row["segment"] for row in rows} == {"big"}
    assert {(row["clv"], row["p_alive"], row["churn"]) for row in rows} == {("10.5", "0.8", "0.2")}


def test_jsonl_with_chosen_columns(segment_client: httpx.Client, export_shop: ExportShop) -> None:
    response = export(
        segment_client, export_shop.reader, "big", format="jsonl", columns="clv,customer_id"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == BIG
    assert all(list(line) == ["clv", "customer_id"] for line in lines)
    assert {line["customer_id"] for line in lines} == export_shop.big_ids
    assert {line["clv"] for line in lines} == {10.5}


def test_csv_cells_that_start_a_formula_are_neutralised(
    segment_client: httpx.Client, export_shop: ExportShop
) -> None:
    response = export(segment_client, export_shop.reader, "risky", columns="customer_id,clv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["customer_id", "clv"]
    cells = {row[0] for row in rows[1:]}
    assert cells == {
        '\'=HYPERLINK("http://x")',
        "'+1+2",
        "'-3",
        "'@SUM(A1)",
        "'\tcell",
        "plain-id",
    }
    assert {row[1] for row in rows[1:]} == {"10.5"}  # numbers stay numbers
    # JSON Lines is not read by spreadsheets: the ids come back as stored.
    jsonl = export(segment_client, export_shop.reader, "risky", format="jsonl")
    assert {json.loads(line)["customer_id"] for line in jsonl.text.splitlines()} == set(RISKY_IDS)


@pytest.mark.parametrize("scope", [s.value for s in Scope])
def test_scope_matrix(
    segment_client: httpx.Client, export_shop: ExportShop, make_key: MakeKey, scope: str
) -> None:
    response = export(segment_client, make_key(scope, tenant=export_shop.tenant), "risky")
    if scope in {"admin", "segments:read"}:
        assert response.status_code == 200, response.text
        assert len(response.text.splitlines()) == len(RISKY_IDS) + 1
    else:
        assert response.status_code == 403, response.text
        assert "scope" in response.json()["detail"]


def test_no_key_is_401(segment_client: httpx.Client) -> None:
    response = segment_client.get("/v1/segments/big/export")
    assert response.status_code == 401
    assert {e["field"] for e in response.json()["errors"]} == {"Authorization"}


def test_another_tenant_gets_nothing(
    segment_client: httpx.Client, export_shop: ExportShop, make_key: MakeKey, engine: Engine
) -> None:
    other = make_key("segments:read")
    assert export(segment_client, other, "big").status_code == 404
    with session_scope(engine) as session:  # the other tenant has a segment "big" too
        run = create_run(session, tenant_id=tenant_of(engine, other), active=True)
        assert run.id is not None
        create_segment(session, tenant_id=run.tenant_id, run_id=run.id, key="big")
    response = export(segment_client, other, "big")
    assert response.status_code == 200
    assert response.text.splitlines() == ["customer_id,segment,since,clv,p_alive,churn"]


@pytest.mark.parametrize(
    ("segment", "params", "status", "field"),
    [
        ("big", {"format": "xml"}, 422, "format"),
        ("big", {"columns": "customer_id,email"}, 422, "columns"),
        ("big", {"columns": ""}, 422, "columns"),
        ("big", {"columns": "clv,clv"}, 422, "columns"),
        ("big", {"columns": "x" * 501}, 422, "columns"),
        ("nope", {}, 404, "key"),
        ("x" * 33, {}, 422, "key"),
    ],
)
def test_malformed_and_unknown(
    segment_client: httpx.Client,
    export_shop: ExportShop,
    segment: str,
    params: dict[str, str],
    status: int,
    field: str,
) -> None:
    response = export(segment_client, export_shop.reader, segment, **params)
    assert response.status_code == status, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


def test_without_an_active_segmentation(segment_client: httpx.Client, make_key: MakeKey) -> None:
    response = export(segment_client, make_key("segments:read"), "big")
    assert response.status_code == 404
    assert "POST /v1/segmentations" in response.json()["detail"]
