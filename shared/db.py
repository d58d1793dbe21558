"""The one engine and session factory of the platform."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import Session

from shared.settings import PostgresSettings, sqlalchemy_database_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_connectivity_error(exc: BaseException) -> bool:
    """Postgres could not be reached, or the connection died under the statement."""
    if isinstance(exc, OperationalError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def create_db_engine(
    settings: PostgresSettings, *, pool_size: int | None = None, pre_ping: bool = True
) -> Engine:
    """The engine; ``pre_ping=False`` spares each checkout a round trip, for callers that
    retry work which failed on a connection found dead (``connection_invalidated``)."""
    url = settings.database_url
    if not url:
        raise RuntimeError("SEGMENTA_DATABASE_URL is not set")
    return create_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # Fail fast when Postgres is gone, so APIs can answer 503 instead of hanging.
        pool_timeout=settings.db_connect_timeout_s,
        pool_pre_ping=pre_ping,
        # A failed statement's parameters (customer ids, emails) never reach a log,
        # a traceback or a stored error (``dead_letter.reason``).
        hide_parameters=True,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
            "application_name": "segmenta",
        },
    )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration for ``database_url``, in any form the settings accept."""
    url = sqlalchemy_database_url(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates '%': a percent-encoded password must survive it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the one-shot step before services start)."""
    command.upgrade(alembic_config(database_url), revision)
