"""Reviews and transcripts go in through the ingest API and come out as stored analyses.

Real processes throughout: the ingest API, the outbox relay, the nlp worker with the
shipped model, and the nlp API that serves the results.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.contracts import NLP_ANALYZE_REVIEWS, SEGMENT_REFRESH_CUSTOMERS
from shared.db import session_scope
from shared.outbox import enqueue
from tests.conftest import MakeKey
from tests.support.stack import ServiceStack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRANSCRIPT = [
    ("customer", "My parcel is two weeks late. Again. This is ridiculous."),
    ("agent", "I'm so sorry about this. Let me look into it right away."),
    ("customer", "Honestly, I expected a lot better from you. Awful."),
    ("agent", "I've sent a replacement by express today, free of charge, plus a voucher."),
    ("customer", "Thank you, that's great. Really appreciate it!"),
]


def scalar(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def analysis(
    stack: ServiceStack, key: str, kind: str, source_id: str, timeout: float = 90
) -> dict[str, Any]:
    url = f"{stack.api_url}/v1/analyses/{kind}/{source_id}"
    headers = {"Authorization": f"Bearer {key}"}
    found: dict[str, Any] = {}

    def ready() -> bool:
        response = httpx.get(url, headers=headers, timeout=10)
        if response.status_code == 200:
            found.update(response.json())
        return response.status_code == 200

    wait_until(ready, timeout, f"the analysis of {kind} {source_id}\n{stack.worker_output()}")
    return found


def post(client: httpx.Client, key: str, kind: str, body: Any) -> dict[str, Any]:
    response = client.post(f"/v1/{kind}", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def tenant_key(make_key: MakeKey) -> tuple[str, str]:
    tenant = f"nlp-{uuid.uuid4().hex[:10]}"
    return tenant, make_key("ingest:write", "segments:read", tenant=tenant)


def test_reviews_and_a_transcript_come_out_as_analyses(
    nlp_stack: ServiceStack, client: httpx.Client, tenant_key: tuple[str, str], engine: Engine
) -> None:
    tenant, key = tenant_key
    at = "2026-11-01T10:00:00Z"
    reviews = [
        {
            "review_id": "happy",
            "customer_id": "c-1",
            "rating": 5,
            "created_at": at,
            "text": "Absolutely love this cardigan. The wool is soft and it arrived quickly.",
        },
        {
            "review_id": "angry",
            "customer_id": "c-1",
            "rating": 1,
            "created_at": at,
            "text": "The coat arrived two weeks late and the lining was torn. Terrible.",
        },
        {
            "review_id": "swedish",
            "customer_id": "c-2",
            "rating": 4,
            "created_at": at,
            "text": "Leveransen gick snabbt och paketet kom fram i tid.",
        },
    ]
    assert post(client, key, "reviews", reviews)["accepted"] == 3
    turns = [{"speaker": s, "text": t} for s, t in TRANSCRIPT]
    transcript = {
        "transcript_id": "call-1",
        "customer_id": "c-1",
        "channel": "chat",
        "started_at": at,
        "turns": turns,
    }
    assert post(client, key, "transcripts", transcript)["accepted"] == 1

    happy = analysis(nlp_stack, key, "reviews", "happy")["analyses"][0]
    angry = analysis(nlp_stack, key, "reviews", "angry")["analyses"][0]
    swedish = analysis(nlp_stack, key, "reviews", "swedish")["analyses"][0]
    call = analysis(nlp_stack, key, "transcripts", "call-1")["analyses"][0]

    assert (happy["label"], angry["label"]) == ("positive", "negative")
    assert happy["score"] > 0 > angry["score"]
    assert {a["aspect"] for a in angry["details"]["aspects"]} >= {"delivery"}
    assert (swedish["status"], swedish["language"], swedish["label"]) == (
        "unsupported_language",
        "sv",
        None,
    )
    assert call["details"]["trajectory"]["direction"] == "improved"
    assert call["details"]["speakers"]["customer"]["turns"] == 3
    assert call["details"]["resolved"] is True
    assert happy["model_version"] == call["model_version"]

    # segment hears that the customers' sentiment changed
    told = scalar(
        engine,
        "SELECT count(DISTINCT o.customer_pk) FROM outbox o "
        "JOIN customer c ON c.id = o.customer_pk JOIN tenant t ON t.id = c.tenant_id "
        "WHERE t.name = :tenant AND o.task_name = :task",
        tenant=tenant,
        task=SEGMENT_REFRESH_CUSTOMERS,
    )
    assert told == 2


def test_an_unknown_or_foreign_source_is_404(nlp_stack: ServiceStack, make_key: MakeKey) -> None:
    key = make_key("segments:read")
    response = httpx.get(
        f"{nlp_stack.api_url}/v1/analyses/reviews/happy",  # another tenant's review id
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 404
    assert "no review" in response.json()["detail"]


def test_a_redelivered_review_is_not_analysed_twice(
    nlp_stack: ServiceStack, client: httpx.Client, tenant_key: tuple[str, str], engine: Engine
) -> None:
    tenant, key = tenant_key
    review = {
        "review_id": "again",
        "customer_id": "c-9",
        "created_at": "2026-11-02T08:00:00Z",
        "text": "Nice scarf, warm and soft.",
    }
    post(client, key, "reviews", review)
    analysis(nlp_stack, key, "reviews", "again")
    review_pk = scalar(
        engine,
        "SELECT r.id FROM review r JOIN tenant t ON t.id = r.tenant_id "
        "WHERE t.name = :tenant AND r.review_id = 'again'",
        tenant=tenant,
    )
    with session_scope(engine) as session:  # the same work once more, as after a crash
        tenant_id = scalar(engine, "SELECT id FROM tenant WHERE name = :t", t=tenant)
        enqueue(
            session, tenant_id=tenant_id, task_name=NLP_ANALYZE_REVIEWS, subject_ids=[review_pk]
        )
    pending = "SELECT count(*) FROM outbox WHERE task_name = :task AND subject_id = :pk"
    wait_until(
        lambda: scalar(engine, pending, task=NLP_ANALYZE_REVIEWS, pk=review_pk) == 0,
        60,
        "the redelivered task",
    )
    stored = "SELECT count(*) FROM text_analysis WHERE source_kind = 'review' AND source_pk = :pk"
    assert scalar(engine, stored, pk=review_pk) == 1


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(
    nlp_stack: ServiceStack, client: httpx.Client, tenant_key: tuple[str, str], engine: Engine
) -> None:
    tenant, key = tenant_key
    n = 600
    reviews = [
        {
            "review_id": f"k-{i}",
            "customer_id": f"c-{i % 97}",
            "rating": 1 + i % 5,
            "created_at": "2026-11-03T12:00:00Z",
            "text": f"Order {i}: the delivery was quick but the sizing runs small, sadly.",
        }
        for i in range(n)
    ]
    assert post(client, key, "reviews", reviews)["accepted"] == n
    analysed = (
        "SELECT count(*) FROM text_analysis a JOIN tenant t ON t.id = a.tenant_id "
        "WHERE t.name = :tenant"
    )
    wait_until(lambda: scalar(engine, analysed, tenant=tenant) > 0, 120, "the first analyses")
    done_at_kill = scalar(engine, analysed, tenant=tenant)
    nlp_stack.kill_worker()
    assert done_at_kill < n, "the worker finished before it could be killed"

    wait_until(
        lambda: scalar(engine, analysed, tenant=tenant) == n,
        240,
        f"all {n} analyses after the kill\n{nlp_stack.worker_output()}",
    )
    distinct = scalar(
        engine,
        "SELECT count(DISTINCT a.source_pk) FROM text_analysis a "
        "JOIN tenant t ON t.id = a.tenant_id WHERE t.name = :tenant",
        tenant=tenant,
    )
    dead = scalar(
        engine,
        "SELECT count(*) FROM dead_letter d JOIN tenant t ON t.id = d.tenant_id "
        "WHERE t.name = :tenant",
        tenant=tenant,
    )
    assert (distinct, dead) == (n, 0)
