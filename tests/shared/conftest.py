"""Fixtures of tests/shared: every API of the platform as a real uvicorn process, for what
they all must do alike; and the probe worker's tables, emptied, for the delivery tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, text

from shared.db import session_scope
from tests.support.probe import PROBE_TASK, SCHEMA
from tests.support.servers import start_api


@dataclass(frozen=True)
class PlatformApi:
    name: str
    base: str
    post_path: str  # a route that takes a JSON body
    scope: str  # what a key needs to post there


@pytest.fixture(scope="session")
def platform_apis(
    api: str, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, PlatformApi]]:
    """ingest (the session's API), segment, nlp and personalize; nlp on its lexicon
    backend, as what is checked here is HTTP, not sentiment."""
    logs = tmp_path_factory.mktemp("platform-apis")
    segment, segment_base = start_api(env, logs / "segment.log", app="services.segment.main:app")
    nlp_env = {**env, "SEGMENTA_NLP_BACKEND": "lexicon"}
    nlp, nlp_base = start_api(nlp_env, logs / "nlp.log", app="services.nlp.main:app")
    personalize, personalize_base = start_api(
        env, logs / "personalize.log", app="services.personalize.main:app"
    )
    yield {
        "ingest": PlatformApi("ingest", api, "/v1/events", "ingest:write"),
        "segment": PlatformApi("segment", segment_base, "/v1/segmentations", "admin"),
        "nlp": PlatformApi("nlp", nlp_base, "/v1/analyze", "transcripts:write"),
        "personalize": PlatformApi(
            "personalize", personalize_base, "/v1/feedback", "feedback:write"
        ),
    }
    personalize.stop()
    nlp.stop()
    segment.stop()


@pytest.fixture
def probe_env(env: dict[str, str], engine: Engine) -> dict[str, str]:
    with session_scope(engine) as session:
        for statement in SCHEMA.strip().split(";\n"):
            session.execute(text(statement))
        session.execute(text("TRUNCATE probe_effect, probe_poison, probe_killer"))
        session.execute(text("DELETE FROM outbox WHERE task_name = :t"), {"t": PROBE_TASK})
        session.execute(text("DELETE FROM dead_letter WHERE task_name = :t"), {"t": PROBE_TASK})
        session.execute(text("INSERT INTO tenant (name) VALUES ('probe') ON CONFLICT DO NOTHING"))
    return {
        **env,
        "SEGMENTA_RELAY_STALE_AFTER_S": "5",
        "SEGMENTA_MAX_TASK_ATTEMPTS": "3",
        "SEGMENTA_RELAY_BATCH_SIZE": "100",
    }
