"""Static checks of the compose deployment's state and configuration.

Covers deploy/docker-compose.yml's persistence (named volumes, Redis durability, what is
published on the host), its secrets (required, never defaulted or hard-coded), the
interpolated environment, and deploy/.env.example, which must document every variable the
compose file uses.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.compose_support import (
    ENV_EXAMPLE,
    INFRASTRUCTURE,
    REQUIRED_SECRETS,
    MissingVariableError,
    Service,
    app_services,
    command_of,
    deployment_env,
    env_example,
    interpolate,
    referenced_variables,
)

pytestmark = pytest.mark.unit


# --- state ----------------------------------------------------------------------------------


def test_redis_persists_queued_tasks(services: dict[str, Service]) -> None:
    command = command_of(services["redis"])
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"


def test_stateful_services_use_declared_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, data_dir in {"postgres": "/var/lib/postgresql/data", "redis": "/data"}.items():
        mounts: dict[str, str] = {}
        for volume in compose["services"][name]["volumes"]:
            volume_source, target = str(volume).split(":")[:2]
            mounts[target] = volume_source
        source = mounts.get(data_dir)
        assert source, f"{name}: {data_dir} is not on a volume"
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", source), (
            f"{name}: {source} is a bind mount, not a named volume"
        )
        assert source in declared, f"{name}: volume {source} is not declared at top level"


def test_infrastructure_is_not_published_on_the_host(services: dict[str, Service]) -> None:
    for name in INFRASTRUCTURE:
        assert "ports" not in services[name], name


def test_flower_is_optional_and_loopback_only(services: dict[str, Service]) -> None:
    flower = services["flower"]
    assert flower["profiles"] == ["ops"]
    assert all(str(port).startswith("127.0.0.1:") for port in flower["ports"])


# --- secrets and configuration ---------------------------------------------------------------


def test_secret_key_is_required_and_never_defaulted(services: dict[str, Service]) -> None:
    users = [
        name for name, s in services.items() if "SEGMENTA_SECRET_KEY" in s.get("environment", {})
    ]
    assert set(app_services(services)) <= set(users)
    for name in users:
        value = services[name]["environment"]["SEGMENTA_SECRET_KEY"]
        assert re.fullmatch(r"\$\{SEGMENTA_SECRET_KEY:\?[^}]+\}", value), (name, value)


def test_no_hard_coded_secrets(services: dict[str, Service]) -> None:
    secret_name = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|(^|_)KEY$", re.IGNORECASE)
    for name, service in services.items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: use the mapping form of environment"
        for key, value in environment.items():
            text = str(value)
            if secret_name.search(key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", text), (
                    f"{name}.{key} must be a required variable, not {text!r}"
                )
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", text):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", password), (
                    f"{name}.{key} embeds a literal password"
                )


def test_compose_refuses_to_start_without_secrets(compose: dict[str, Any]) -> None:
    for missing in REQUIRED_SECRETS:
        env = deployment_env()
        env[missing] = ""
        with pytest.raises(MissingVariableError, match=missing):
            interpolate(compose, env)


def test_interpolated_environment(compose: dict[str, Any]) -> None:
    env = deployment_env()
    ingest = interpolate(compose, env)["services"]["ingest"]["environment"]
    assert ingest["SEGMENTA_ENVIRONMENT"] == "production"
    assert ingest["SEGMENTA_DATABASE_URL"] == (
        f"postgresql+psycopg://segmenta:{env['POSTGRES_PASSWORD']}@postgres:5432/segmenta"
    )
    assert ingest["SEGMENTA_REDIS_URL"] == "redis://redis:6379/0"
    assert ingest["SEGMENTA_SECRET_KEY"] == env["SEGMENTA_SECRET_KEY"]
    assert ingest["SEGMENTA_LOG_LEVEL"] == env["SEGMENTA_LOG_LEVEL"]


def test_env_example_documents_every_variable(compose: dict[str, Any]) -> None:
    documented = env_example()
    referenced = referenced_variables(compose)  # `$$HOSTNAME` is escaped: not a variable
    assert referenced <= set(documented), referenced - set(documented)
    assert set(documented) <= referenced, set(documented) - referenced
    for name in REQUIRED_SECRETS:
        assert documented[name] == "", f"{name} must ship empty in the example"

    # Each variable (or block of related variables) has a comment right above it.
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    assignment = re.compile(r"[A-Z][A-Z0-9_]*=")
    for number, line in enumerate(lines):
        if assignment.match(line):
            above = number - 1
            while above >= 0 and assignment.match(lines[above]):
                above -= 1
            assert above >= 0, f"{line}: add a comment above it"
            assert lines[above].startswith("#"), f"{line}: add a comment above it"
    assert "secrets.token_urlsafe" in ENV_EXAMPLE.read_text(encoding="utf-8")
