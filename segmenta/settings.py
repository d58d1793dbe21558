"""The CLI's settings, and the environment it hands to the processes it starts."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTA_", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    # Embedded PostgreSQL/Redis data, and the URLs of a running `segmenta up`.
    data_dir: Path = Path(".segmenta")
    ingest_port: int = 8001
    nlp_port: int = 8004
    segment_port: int = 8002
    api_url: str | None = None
    api_key: str | None = None


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment plus ``overrides``, for the platform's processes."""
    env = dict(os.environ)
    env.update(overrides)
    return env
