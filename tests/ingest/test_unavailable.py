"""When Postgres is gone the API says so quickly (503 + Retry-After) instead of hanging."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port, service_env, start_api

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def api_without_postgres(redis_url: str, tmp_path: Path) -> Iterator[str]:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    process, base = start_api(service_env(dead, redis_url), tmp_path / "api.log")
    yield base
    process.stop()


def test_postgres_down_gives_a_fast_503_with_retry_after(api_without_postgres: str) -> None:
    key = "sgm_0123456789ab_" + "x" * 43
    started = time.monotonic()
    response = httpx.post(
        f"{api_without_postgres}/v1/events",
        json={},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert elapsed < 10  # connect timeout, not a hang
    ready = httpx.get(f"{api_without_postgres}/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"postgres": "unavailable", "redis": "ok"}
    assert httpx.get(f"{api_without_postgres}/healthz").status_code == 200
