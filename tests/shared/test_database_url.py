"""SEGMENTA_DATABASE_URL in every form a Postgres host hands out works, with psycopg 3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect, text

from shared.db import create_db_engine, migrate
from shared.settings import PostgresSettings, Settings
from tests.support.servers import scratch_database


def _forms(libpq_url: str) -> list[str]:
    rest = libpq_url.split("://", 1)[1]
    return [
        f"postgresql://{rest}",
        f"postgres://{rest}",
        f"postgresql+psycopg2://{rest}",
        f"postgresql+psycopg://{rest}",
        f"postgresql://{rest}?sslmode=prefer&application_name=from-url",
        f"postgres://{rest}?sslmode=disable",
    ]


@pytest.mark.integration
@pytest.mark.parametrize("form", range(6))
def test_every_usual_url_form_connects_and_migrates(database_url: str, form: int) -> None:
    url = _forms(database_url)[form]
    settings = PostgresSettings(database_url=url)
    engine = create_db_engine(settings)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()
    migrate(url)  # the schema is at head already: Alembic connects and finds nothing to do


@pytest.mark.integration
def test_settings_read_a_postgres_url_from_the_environment(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENTA_DATABASE_URL", _forms(database_url)[1])
    assert Settings().require_database_url().startswith("postgresql+psycopg://")


@pytest.mark.e2e
def test_segmenta_migrate_builds_a_new_schema_from_a_postgres_url(
    database_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    with scratch_database("segmenta_url", admin_url=database_url) as fresh:
        plain = "postgres://" + fresh.split("://", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "segmenta", "migrate"],
            env={**env, "SEGMENTA_DATABASE_URL": plain},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        engine = create_db_engine(PostgresSettings(database_url=plain))
        try:
            assert "segmentation_run" in inspect(engine).get_table_names()
        finally:
            engine.dispose()


@pytest.mark.unit
@pytest.mark.parametrize(
    "url", ["mysql://u:hunter22@h/db", "sqlite:///hunter22.db", "127.0.0.1:5432/hunter22"]
)
def test_a_url_that_is_not_postgres_is_refused_naming_the_variable_not_its_password(
    url: str,
) -> None:
    with pytest.raises(
        ValidationError, match="SEGMENTA_DATABASE_URL must be a PostgreSQL URL"
    ) as e:
        PostgresSettings(database_url=url)
    assert "hunter22" not in str(e.value)
