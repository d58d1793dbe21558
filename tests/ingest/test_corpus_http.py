"""The malformed-input corpus against the running API: a clear 4xx for every case, no 5xx.

Each answer must be one the case allows and name the offending field; a 200 (mixed
batches) must say exactly what was stored, and nothing else may be stored.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import MakeKey
from tests.ingest.corpus import Case, assert_field_named, build_corpus
from tests.support.http import auth, count, tenant_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TABLES = {
    "customers": "customer",
    "products": "product",
    "orders": "orders",
    "events": "event",
    "reviews": "review",
    "transcripts": "transcript",
}


def test_every_malformed_case_gets_the_expected_4xx_and_nothing_else_is_stored(
    client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    corpus = build_corpus()
    assert len(corpus) >= 1_000
    key = make_key("admin", rate_limit_per_minute=1_000_000)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    accepted: Counter[str] = Counter()
    for case in corpus:
        response = send(client, key, case)
        statuses[response.status_code] += 1
        if response.status_code not in case.expect:
            failures.append(f"{case.name}: {response.status_code} {response.text[:200]}")
            continue
        if response.status_code == 200:
            body = response.json()
            assert body["rejected"], case.name  # mixed: the bad items are listed
            accepted[case.kind] += body["accepted"] + body["duplicates"]
        elif case.field is not None:
            try:
                assert_field_named(response.json(), case.field)
            except AssertionError as exc:
                failures.append(f"{case.name}: field {case.field} not named: {exc}")
    assert not [s for s in statuses if s >= 500], statuses
    assert not failures, "\n".join(failures[:30])
    tenant = tenant_of(engine, key)
    for kind, table in TABLES.items():
        # Mixed batches re-send the same valid example, so each kind stores at most it.
        assert count(engine, table, tenant) == (1 if accepted[kind] else 0), kind


def send(client: httpx.Client, key: str, case: Case) -> httpx.Response:
    return client.post(
        f"/v1/{case.kind}",
        content=case.body,
        headers={**auth(key), "content-type": case.content_type},
    )
