"""Every API of the platform as a real uvicorn process, for what they all must do alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

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
    """ingest (the session's API), segment and nlp; nlp on its lexicon backend, as what
    is checked here is HTTP, not sentiment."""
    logs = tmp_path_factory.mktemp("platform-apis")
    segment, segment_base = start_api(env, logs / "segment.log", app="services.segment.main:app")
    nlp_env = {**env, "SEGMENTA_NLP_BACKEND": "lexicon"}
    nlp, nlp_base = start_api(nlp_env, logs / "nlp.log", app="services.nlp.main:app")
    yield {
        "ingest": PlatformApi("ingest", api, "/v1/events", "ingest:write"),
        "segment": PlatformApi("segment", segment_base, "/v1/segmentations", "admin"),
        "nlp": PlatformApi("nlp", nlp_base, "/v1/analyze", "transcripts:write"),
    }
    nlp.stop()
    segment.stop()
