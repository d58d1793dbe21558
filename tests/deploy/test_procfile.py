"""Static checks of deploy/Procfile: generated from the registry, the same processes as the
compose file."""

from __future__ import annotations

import shlex

import pytest

from shared.topology import processes
from shared.topology import procfile as registry_procfile
from tests.deploy.compose_support import PROCFILE, Service, app_services, command_of, procfile

pytestmark = pytest.mark.unit


# --- Procfile -------------------------------------------------------------------------------


def test_procfile_runs_the_same_processes_as_compose(services: dict[str, Service]) -> None:
    assert sorted(procfile()) == sorted(app_services(services))


def test_procfile_commands_match_compose(services: dict[str, Service]) -> None:
    for name, command in procfile().items():
        words = shlex.split(command)
        if "-n" in words:  # a per-process node name: compose uses the container hostname
            index = words.index("-n")
            del words[index : index + 2]
        assert words == command_of(services[name]), name


def test_procfile_documents_the_migration_step() -> None:
    text = PROCFILE.read_text(encoding="utf-8")
    assert "alembic upgrade head" in text
    assert "migrate" not in procfile()


def test_procfile_is_generated_from_the_registry() -> None:
    assert PROCFILE.read_text(encoding="utf-8") == registry_procfile(), (
        "regenerate it: python -m shared.topology procfile > deploy/Procfile"
    )
    assert list(procfile()) == [process.name for process in processes()]


def test_procfile_workers_get_one_node_name_per_replica() -> None:
    for name, command in procfile().items():
        if " worker " in command:
            assert "-n " in command, name
            assert "${PORT:-0}@%h" in command, name
