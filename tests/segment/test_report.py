"""The segment report (HTML) and the changes view's input checks, on the segmented shop."""

from __future__ import annotations

import re
from html import escape

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.conftest import ShopKeys
from tests.support.http import auth, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_the_report_has_a_section_per_segment_with_what_a_colleague_needs(
    segment_client: httpx.Client, shop: ShopKeys
) -> None:
    run = shop.shop.run_id
    response = segment_client.get(f"/v1/segmentations/{run}/report", headers=auth(shop.reader))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "<script" not in page.lower()
    segments = segment_client.get("/v1/segments", headers=auth(shop.reader)).json()["segments"]
    sections = page.split("<section>")[1:]
    assert len(sections) == len(segments) == 4
    for segment, section in zip(segments, sections, strict=True):
        assert escape(segment["name"]) in section
        assert f"{segment['size']:,} customers" in section
        rule = segment["rules"]
        assert escape(rule["text"]) in section
        assert f"catches {rule['coverage']:.0%} of the segment" in section
        assert "of revenue" in section
        # CLV with its interval: the active run's members and their scores.
        assert re.search(r"mean EUR [\d,]+ ± [\d,]+ \(95% interval of the mean", section)
        assert f"since run {shop.shop.previous_run_id}" in section


def test_names_in_the_report_are_escaped(
    segment_client: httpx.Client, shop: ShopKeys, engine: Engine
) -> None:
    with session_scope(engine) as session:
        session.execute(
            text("UPDATE segment SET name = :n WHERE run_id = :r AND key = 's1'"),
            {"n": "<script>alert(1)</script> & co", "r": shop.shop.run_id},
        )
    page = segment_client.get(
        f"/v1/segmentations/{shop.shop.run_id}/report", headers=auth(shop.reader)
    ).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<script" not in page


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/segmentations/abc/report", "run_id"),
        ("/v1/segmentations/0/report", "run_id"),
        ("/v1/segmentations/{run}/changes", "against"),
        ("/v1/segmentations/{run}/changes?against=x", "against"),
        ("/v1/segmentations/{run}/changes?against=0", "against"),
        ("/v1/segmentations/{run}/changes?against={run}&sample=-1", "sample"),
        ("/v1/segmentations/{run}/changes?against={run}&sample=100000", "sample"),
    ],
)
def test_malformed_requests_name_the_field(
    segment_client: httpx.Client, shop: ShopKeys, path: str, field: str
) -> None:
    response = segment_client.get(path.format(run=shop.shop.run_id), headers=auth(shop.reader))
    assert response.status_code == 422, response.text
    assert field in {error["field"] for error in response.json()["errors"]}


def test_unknown_runs_and_runs_without_a_model(
    segment_client: httpx.Client, shop: ShopKeys, make_key: MakeKey, engine: Engine
) -> None:
    run, previous = shop.shop.run_id, shop.shop.previous_run_id
    headers = auth(shop.reader)
    missing = segment_client.get(
        f"/v1/segmentations/{run}/changes?against=99999999", headers=headers
    )
    assert missing.status_code == 404
    assert {e["field"] for e in missing.json()["errors"]} == {"against"}
    assert (
        segment_client.get("/v1/segmentations/99999999/report", headers=headers).status_code == 404
    )
    # The shop's runs were stored without a fitted model: nothing can assign with them.
    response = segment_client.get(
        f"/v1/segmentations/{run}/changes?against={previous}", headers=headers
    )
    assert response.status_code == 409
    # Another tenant's run is not found, whichever side it is on.
    other = make_key("segments:read")
    assert tenant_of(engine, other) != shop.shop.tenant_id
    crossed = segment_client.get(
        f"/v1/segmentations/{run}/changes?against={previous}", headers=auth(other)
    )
    assert crossed.status_code == 404
