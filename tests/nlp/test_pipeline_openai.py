"""The openai backend in the real worker, against FakeChatServer (a named LLM-host double).

A text the model cannot answer for (here: prose instead of JSON, every time) is retried,
then dead-lettered with the reason after exactly N attempts; the rest of its batch is
analysed meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from shared.contracts import NLP_ANALYZE_REVIEWS
from tests.conftest import MakeKey
from tests.nlp.conftest import RELIABILITY_ENV
from tests.nlp.test_pipeline import post, scalar
from tests.support.fake_llm import FakeChatServer, fake_chat_server
from tests.support.stack import ServiceStack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ATTEMPTS = int(RELIABILITY_ENV["SEGMENTA_MAX_TASK_ATTEMPTS"])


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeChatServer]:
    with fake_chat_server() as fake:
        yield fake


@pytest.fixture(scope="module")
def openai_stack(
    env: dict[str, str], fake_llm: FakeChatServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceStack]:
    stack_env = {
        **env,
        **RELIABILITY_ENV,
        "SEGMENTA_NLP_BACKEND": "openai",
        "SEGMENTA_OPENAI_BASE_URL": fake_llm.url,
        "SEGMENTA_OPENAI_MODEL": "fake-model",
        "SEGMENTA_OPENAI_MAX_RETRIES": "1",
    }
    stack = ServiceStack("nlp", stack_env, tmp_path_factory.mktemp("nlp-openai"))
    yield stack
    stack.stop()


def test_a_poison_review_is_dead_lettered_and_the_rest_analysed(
    openai_stack: ServiceStack, client: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    tenant = f"llm-{uuid.uuid4().hex[:10]}"
    key = make_key("ingest:write", tenant=tenant)
    texts = ["I love it, great fit", "Arrived late and broken", "POISON in the text", "Good"]
    reviews = [
        {
            "review_id": f"r-{i}",
            "customer_id": "c-1",
            "created_at": "2026-11-01T10:00:00Z",
            "text": t,
        }
        for i, t in enumerate(texts)
    ]
    assert post(client, key, "reviews", reviews)["accepted"] == 4
    by_tenant = "JOIN tenant t ON t.id = x.tenant_id WHERE t.name = :tenant"
    analysed = f"SELECT count(*) FROM text_analysis x {by_tenant} AND x.backend = 'openai'"
    dead = f"SELECT count(*) FROM dead_letter x {by_tenant} AND x.task_name = :task"
    wait_until(
        lambda: scalar(engine, dead, tenant=tenant, task=NLP_ANALYZE_REVIEWS) == 1,
        120,
        f"the poison review's dead letter\n{openai_stack.worker_output()}",
    )
    assert scalar(engine, analysed, tenant=tenant) == 3
    attempts = scalar(
        engine, f"SELECT max(x.attempts) FROM dead_letter x {by_tenant}", tenant=tenant
    )
    assert attempts == ATTEMPTS
    reason = "SELECT count(*) FROM dead_letter x " + by_tenant + " AND x.reason LIKE :r"
    assert scalar(engine, reason, tenant=tenant, r="%no valid answer%") == 1
