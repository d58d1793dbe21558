"""personalize's malformed-input corpus against the running API: every case gets the 4xx
it allows (feedback: its bad events listed in ``rejected`` of a 200) naming the field,
never a 5xx, and nothing is stored."""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import MakeKey
from tests.ingest.corpus import assert_field_named
from tests.personalize.corpus import Case, build_corpus
from tests.support.http import auth, count, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]
STORED = ("offer", "placement", "experiment", "feedback", "decision")


def test_every_malformed_case_gets_a_clear_4xx_and_nothing_is_stored(
    pclient: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    corpus = build_corpus()
    assert len(corpus) >= 1_000
    tenant = f"corpus-{uuid.uuid4().hex[:8]}"
    admin = make_key("admin", tenant=tenant, rate_limit_per_minute=1_000_000)
    storefront = make_key(
        "offers:read", "feedback:write", tenant=tenant, rate_limit_per_minute=1_000_000
    )
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for case in corpus:
        storefront_route = case.path == "/v1/feedback" or (
            case.method == "GET" and case.path.startswith("/v1/offers/")
        )
        key = storefront if storefront_route else admin
        response = send(pclient, key, case)
        statuses[response.status_code] += 1
        if response.status_code not in case.expect:
            failures.append(f"{case.name}: {response.status_code} {response.text[:200]}")
            continue
        try:
            if response.status_code == 200:
                body = response.json()
                assert body["rejected"], "no event rejected"
                assert body["accepted"] == 0, "an event was accepted"
            if case.field is not None:
                assert_field_named(response.json(), case.field)
        except AssertionError as exc:
            failures.append(f"{case.name}: {exc}")
    assert not [s for s in statuses if s >= 500], statuses
    assert not failures, "\n".join(failures[:40])
    tenant_id = tenant_of(engine, admin)
    assert {table: count(engine, table, tenant_id) for table in STORED} == dict.fromkeys(STORED, 0)


def send(client: httpx.Client, key: str, case: Case) -> httpx.Response:
    headers = auth(key)
    if case.body is not None:
        headers["content-type"] = case.content_type
    return client.request(
        case.method, case.path, content=case.body, params=case.params, headers=headers
    )
