"""The malformed-input corpus, generated from each API's OpenAPI document, against the
running nlp and segment APIs: no 5xx, a 4xx for everything the document refuses, a 422
that names the field, and nothing stored for a refused request."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import MakeKey
from tests.shared.conftest import PlatformApi
from tests.support.http import auth, count, tenant_of
from tests.support.openapi_corpus import Case, build_corpus

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def send(client: httpx.Client, key: str, case: Case) -> httpx.Response:
    headers = auth(key)
    if case.content_type is not None:
        headers["content-type"] = case.content_type
    url = case.path + (f"?{case.query}" if case.query else "")
    return client.request(case.method.upper(), url, content=case.body, headers=headers)


def run_corpus(base: str, key: str) -> tuple[list[Case], Counter[int], list[str], Counter[str]]:
    """The corpus, the answers by status, what went wrong, and the 2xx answers to POSTs
    by path."""
    with httpx.Client(base_url=base, timeout=60) as client:
        corpus = build_corpus(client.get("/openapi.json").json())
        statuses: Counter[int] = Counter()
        failures: list[str] = []
        created: Counter[str] = Counter()
        for case in corpus:
            answer = send(client, key, case)
            status = answer.status_code
            statuses[status] += 1
            if status >= 500:
                failures.append(f"{case.name}: {status} {answer.text[:200]}")
            elif case.invalid and status < 400:
                failures.append(f"{case.name}: accepted ({status}) what the document refuses")
            elif status == 422 and not all(e.get("field") for e in answer.json()["errors"]):
                failures.append(f"{case.name}: 422 without the field: {answer.text[:200]}")
            elif status < 300 and case.method == "post":
                created[case.path] += 1
    return corpus, statuses, failures, created


@pytest.mark.parametrize("name", ["nlp", "segment"])
def test_every_generated_malformed_case_is_a_clear_4xx(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey, engine: Engine, name: str
) -> None:
    key = make_key("admin", rate_limit_per_minute=1_000_000)
    corpus, statuses, failures, created = run_corpus(platform_apis[name].base, key)
    assert len(corpus) >= 1_000
    assert sum(case.invalid for case in corpus) >= 500
    assert not failures, "\n".join(failures[:30])
    assert not [status for status in statuses if status >= 500], statuses
    assert statuses[422] >= 400, statuses  # most refusals name a field
    if name == "segment":
        # Only what was accepted became a run (the tenant's limit refuses the rest: 429),
        # each with its one task message.
        tenant = tenant_of(engine, key)
        runs = {
            "segmentation_run": "/v1/segmentations",
            "prediction_run": "/v1/predictions",
            "anomaly_run": "/v1/anomalies/runs",
            "webhook_subscription": "/v1/webhooks",
        }
        assert set(created) <= set(runs.values()), created
        for table, path in runs.items():
            assert count(engine, table, tenant) == created[path], (table, created)
        queued = sum(created[path] for table, path in runs.items() if table.endswith("_run"))
        assert count(engine, "outbox", tenant) == queued, created
