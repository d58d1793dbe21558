"""What the test suite reads from its environment, in one place."""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class TestEnvironment(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # A PostgreSQL role allowed to create databases; the suite makes and drops its own.
    segmenta_test_admin_url: str = DEFAULT_ADMIN_URL
    # Used by the probe worker of the reliability tests.
    probe_slow_s: float = Field(default=0.0, ge=0)


def test_environment() -> TestEnvironment:
    return TestEnvironment()


def inherited_env(
    *, drop_prefix: str | None = None, drop: frozenset[str] = frozenset()
) -> dict[str, str]:
    """This process's environment for a child process, without the named variables."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not (drop_prefix and k.startswith(drop_prefix))
    }
