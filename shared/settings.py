"""Typed settings, read once per process from ``SEGMENTA_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "development-only-secret"})
DEVELOPMENT_SECRET = "development-only-secret"  # noqa: S105 (refused in production)


class _Base(BaseSettings):
    # A refused value never reaches an error message: URLs and keys carry passwords.
    model_config = SettingsConfigDict(
        env_prefix="SEGMENTA_", extra="ignore", hide_input_in_errors=True
    )


# Every driver whose URL query is libpq's (sslmode=, host=/socket, ...): psycopg 3 reads it
# as is. Drivers with their own query words (asyncpg's ssl=, pg8000) would be misread.
_LIBPQ_SCHEMES = frozenset(
    {
        "postgres",
        "postgresql",
        "postgresql+psycopg",
        "postgresql+psycopg2",
        "postgresql+psycopg2cffi",
    }
)
SQLALCHEMY_SCHEME = "postgresql+psycopg"


def sqlalchemy_database_url(url: str) -> str:
    """``url`` in any usual Postgres form, for SQLAlchemy with psycopg 3 (the one driver
    installed): ``postgres://`` and ``postgresql://`` (libpq, Heroku, most hosts) and
    ``postgresql+psycopg2://`` (older SQLAlchemy set-ups) would load psycopg2 otherwise."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in _LIBPQ_SCHEMES:
        raise ValueError(
            "SEGMENTA_DATABASE_URL must be a PostgreSQL URL such as "
            "postgresql://user:password@host:5432/dbname"
        )
    return f"{SQLALCHEMY_SCHEME}://{rest}"


class PostgresSettings(_Base):
    # None means "not configured": the CLI then starts an embedded PostgreSQL.
    database_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1)
    db_connect_timeout_s: int = Field(default=3, ge=1)
    db_statement_timeout_ms: int = Field(default=60_000, ge=100)

    @field_validator("database_url")
    @classmethod
    def _psycopg3_url(cls, url: str | None) -> str | None:
        return sqlalchemy_database_url(url) if url else None


class RedisSettings(_Base):
    redis_url: str | None = None


class LimitSettings(_Base):
    max_record_bytes: int = 32 * 1024
    max_transcript_bytes: int = 256 * 1024
    max_body_bytes: int = 500_000
    max_batch_items: int = 2_500
    rate_limit_per_minute: int = Field(default=6_000, ge=1)


class CelerySettings(_Base):
    # RELIABILITY.md: the hard time limit must stay below the visibility timeout,
    # or Redis hands a still-running task to a second worker.
    task_time_limit_s: int = 300
    visibility_timeout_s: int = 900
    max_task_attempts: int = Field(default=5, ge=1)
    relay_batch_size: int = Field(default=200, ge=1)
    relay_poll_interval_s: float = 0.2
    relay_stale_after_s: int = 900
    # A published row that no message in Redis carries after this long was lost (a Redis
    # restart, a worker killed holding it) and is published again; see shared.broker_watch.
    relay_lost_after_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _time_limit_below_visibility(self) -> Self:
        if self.task_time_limit_s >= self.visibility_timeout_s:
            raise ValueError(
                "SEGMENTA_TASK_TIME_LIMIT_S must be below SEGMENTA_VISIBILITY_TIMEOUT_S"
            )
        return self


class Settings(PostgresSettings, RedisSettings, LimitSettings, CelerySettings):
    environment: Literal["development", "test", "production"] = "development"
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.environment == "production" and (
            self.secret_key.get_secret_value() in PLACEHOLDER_SECRETS
            or len(self.secret_key.get_secret_value()) < 16
        ):
            raise ValueError("SEGMENTA_SECRET_KEY must be set to a real secret in production")
        return self

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("SEGMENTA_DATABASE_URL is not set (or run through `segmenta up`)")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("SEGMENTA_REDIS_URL is not set (or run through `segmenta up`)")
        return self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
