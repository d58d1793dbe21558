"""The nlp service running for real: relay, worker and API processes on the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import ServiceStack

# Short enough that a killed worker's batch is re-driven within the test, not in 15 min.
RELIABILITY_ENV = {
    "SEGMENTA_RELAY_STALE_AFTER_S": "5",
    "SEGMENTA_MAX_TASK_ATTEMPTS": "3",
    "SEGMENTA_RELAY_BATCH_SIZE": "50",
    "SEGMENTA_NLP_THREADS": "1",
}


@pytest.fixture(scope="module")
def nlp_stack(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceStack]:
    stack = ServiceStack("nlp", {**env, **RELIABILITY_ENV}, tmp_path_factory.mktemp("nlp"))
    stack.start_api("services.nlp.main:app")
    yield stack
    stack.stop()
