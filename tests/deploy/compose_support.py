"""Paths, constants and helpers shared by the compose deployment checks.

The checks themselves live in ``test_compose.py`` (schema, start order, health, workers,
builds), ``test_compose_config.py`` (state, secrets, environment, ``.env.example``) and
``test_procfile.py`` (the Procfile). The ``compose`` and ``services`` fixtures are in
``conftest.py``.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from shared.topology import API_SERVER_OPTIONS, processes

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
PROCFILE = DEPLOY / "Procfile"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")

# Not Segmenta code: the backing servers, and the optional LLM server (profile `llm`).
INFRASTRUCTURE = frozenset({"postgres", "redis", "llm"})
ONE_SHOT = frozenset({"migrate"})
# From the registry (shared/topology.py): the compose file must follow it.
WORKERS = {p.name: str(p.queue) for p in processes() if p.role == "worker"}
REQUIRED_SECRETS = ("POSTGRES_PASSWORD", "SEGMENTA_SECRET_KEY")

# Services that run no health probe, and why. They must say `disable: true` explicitly:
# otherwise they inherit the ingest image's HTTP HEALTHCHECK for a port nobody listens on.
HEALTHCHECK_EXEMPT = {
    "migrate": "one-shot job: it exits, its exit status is the check",
    "relay": "no port and no Celery node to probe; the restart policy covers crashes",
    **{
        p.name: "a timer with no port or worker node; the restart policy covers crashes"
        for p in processes()
        if p.role == "beat"
    },
}

# The entry points the process commands may name: the registry's modules.
# The processes' modules, and the HTTP protocol class every API is served with.
ENTRYPOINT_MODULES = frozenset(
    module.split(":")[0].replace(".", "/") + ".py"
    for module in [*(p.module for p in processes()), API_SERVER_OPTIONS[1]]
)

Service = dict[str, Any]


# --- loading ------------------------------------------------------------------------------


@cache
def load_compose() -> dict[str, Any]:
    # safe_load resolves the anchors and `<<` merge keys the file uses, as compose does.
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@cache
def load_schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert isinstance(schema, dict)
    return schema


def app_services(services: Mapping[str, Service]) -> dict[str, Service]:
    """Long-running Segmenta processes started by a plain `up` (no profile)."""
    return {
        name: service
        for name, service in services.items()
        if name not in INFRASTRUCTURE | ONE_SHOT and not service.get("profiles")
    }


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def procfile() -> dict[str, str]:
    processes: dict[str, str] = {}
    for line in PROCFILE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line)
        if match:
            assert match.group(1) not in processes, f"duplicate process {match.group(1)}"
            processes[match.group(1)] = match.group(2).strip()
    return processes


def command_of(service: Service) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list), "every Segmenta service names its command explicitly"
    return [str(part) for part in command]


def modules_of(command: list[str]) -> list[str]:
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


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _interpolate_string(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
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


def referenced_variables(node: Any) -> set[str]:
    names: set[str] = set()
    for text in _strings(node):
        for match in _VARIABLE.finditer(text):
            name = match.group("name") or match.group("bare")
            if name:
                names.add(name)
    return names


def deployment_env() -> dict[str, str]:
    env = env_example()
    env.update({name: f"test-{name.lower()}-0123456789abcdef" for name in REQUIRED_SECRETS})
    return env


# --- schema and durations -------------------------------------------------------------------


def validator_class() -> Any:
    # The spec declares draft 7 as "https://json-schema.org/draft-07/schema", a spelling
    # jsonschema does not map to a draft by itself.
    declared = load_schema()["$schema"]
    assert re.fullmatch(r"https?://json-schema\.org/draft-07/schema#?", declared), declared
    return jsonschema.Draft7Validator


def schema_errors(document: Any) -> list[str]:
    validator = validator_class()(load_schema())
    return [
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts, f"not a compose duration: {duration!r}"
    assert "".join(number + unit for number, unit in parts) == duration
    return sum(float(number) * units[unit] for number, unit in parts)
