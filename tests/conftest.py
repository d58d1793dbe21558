"""Shared fixtures: one migrated scratch database and one private Redis per test session.

Tests isolate from each other by tenant: every API key made by ``make_key`` belongs to a
fresh tenant unless a test asks for a particular one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import Engine

from shared.auth import create_api_key
from shared.db import create_db_engine, migrate, session_scope
from shared.settings import Settings
from tests.support.servers import (
    postgres_server,
    private_redis,
    scratch_database,
    service_env,
    sqlalchemy_url,
    start_api,
)

MakeKey = Callable[..., str]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with (
        postgres_server(tmp_path_factory.mktemp("postgres")) as admin_url,
        scratch_database(admin_url=admin_url) as url,
    ):
        migrate(sqlalchemy_url(url))
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def env(database_url: str, redis_url: str) -> dict[str, str]:
    return service_env(database_url, redis_url)


@pytest.fixture(scope="session")
def settings(env: dict[str, str]) -> Settings:
    return Settings(
        database_url=env["SEGMENTA_DATABASE_URL"],
        redis_url=env["SEGMENTA_REDIS_URL"],
        environment="test",
        secret_key=env["SEGMENTA_SECRET_KEY"],
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ingest API as a real uvicorn process; yields its base URL."""
    process, base = start_api(env, tmp_path_factory.mktemp("api") / "api.log")
    yield base
    process.stop()


@pytest.fixture
def make_key(engine: Engine) -> MakeKey:
    def make(
        *scopes: str,
        tenant: str | None = None,
        rate_limit_per_minute: int | None = None,
        client: str = "test-client",
    ) -> str:
        with session_scope(engine) as session:
            issued = create_api_key(
                session,
                client=client,
                scopes=list(scopes or ("ingest:write",)),
                tenant=tenant or f"tenant-{uuid.uuid4().hex[:12]}",
                rate_limit_per_minute=rate_limit_per_minute,
            )
        return issued.key

    return make


@pytest.fixture
def client(api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=60) as c:
        yield c
