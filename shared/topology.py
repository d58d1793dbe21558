"""Every Segmenta service and process, declared once.

``segmenta up`` runs these processes locally; ``deploy/Procfile`` is generated from them
(``python -m shared.topology procfile``) and ``deploy/docker-compose.yml`` is checked
against them by the deploy tests. The CLI's default ports come from here too.

It lives in ``shared/`` rather than in the CLI because it is pure data that the CLI, the
deploy tests, the docs and the images (``deploy/Dockerfile``'s default command prints it)
all read, and ``shared/`` is the one package each of them already has installed. It names
modules as strings and imports no service.

Adding a service: one ``Service(...)`` entry below plus its package ``services/<name>/``
(``main.py`` with ``app`` when it has an API, ``worker.py`` when it has tasks).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

from shared.contracts import LONG_JOBS, QUEUES, runs_queue, service_of

Role = Literal["api", "worker", "beat", "relay"]
# Inside a container the schedule must go to the writable tmpfs (the root is read-only);
# one file per beat, as several beats may share a host's /tmp under a Procfile.
BEAT_SCHEDULE_DIR = "/tmp"  # noqa: S108
# A container's port is reached through its own network namespace: listen on all of it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
# Every API is served with a bound on request heads (see shared/web/server.py).
API_SERVER_OPTIONS = ["--http", "shared.web.server:BoundedHttpToolsProtocol"]


@dataclass(frozen=True)
class Process:
    """One long-running process: its name (compose service, Procfile entry), the image
    (extra) it runs from, and how to start it."""

    name: str
    image: str
    role: Role
    module: str
    queue: str | None = None
    port: int | None = None
    access_log: bool = True

    def command(
        self, *, host: str = ALL_INTERFACES, port: int | None = None, schedule: str | None = None
    ) -> list[str]:
        """The command as a container or Procfile runs it (console scripts on PATH)."""
        if self.role == "api":
            args = ["uvicorn", self.module, "--host", host, "--port", str(port or self.port)]
            args += API_SERVER_OPTIONS
            return args if self.access_log else [*args, "--no-access-log"]
        if self.role == "worker":
            # One task at a time per process: scale by adding processes (RELIABILITY.md).
            tuning = ["--concurrency", "1", "--prefetch-multiplier", "1"]
            return ["celery", "-A", self.module, "worker", "-Q", str(self.queue), *tuning]
        if self.role == "beat":
            schedule = schedule or f"{BEAT_SCHEDULE_DIR}/{self.name}-schedule"
            return ["celery", "-A", self.module, "beat", "--schedule", schedule]
        return ["python", "-m", self.module]

    def local_command(self, *, port: int | None, node: str, schedule: str) -> list[str]:
        """The command for ``segmenta up``: this interpreter, loopback, no banners."""
        args = self.command(host="127.0.0.1", port=port, schedule=schedule)
        if args[0] == "python":
            return [sys.executable, *args[1:]]
        if args[0] == "celery":
            # `--quiet` (a global option) drops the start-up banner.
            args = [*args[:3], "--quiet", *args[3:], "--loglevel", "WARNING"]
        if self.role == "worker":
            args += ["-n", node]
        return [sys.executable, "-m", *args]


@dataclass(frozen=True)
class Service:
    """A service under ``services/<name>/``: its queue is named after it, its image installs
    the extra of the same name."""

    name: str
    port: int
    api: bool = True
    # False until the service has Celery tasks: a worker without them would take the
    # queue's messages and drop them as unregistered. The queue keeps them meanwhile.
    worker: bool = False
    beat: bool = False
    # ingest's request paths name customers: no access log (no customer data in logs).
    access_log: bool = True

    def __post_init__(self) -> None:
        if self.name not in QUEUES:
            raise ValueError(f"service {self.name!r} has no queue in shared.contracts.QUEUES")

    @property
    def queue(self) -> str:
        return self.name

    @property
    def has_long_jobs(self) -> bool:
        return any(service_of(job) == self.name for job in LONG_JOBS)

    def processes(self) -> list[Process]:
        worker_module = f"services.{self.name}.worker"
        found: list[Process] = []
        if self.api:
            name = self.name if self.name == "ingest" else f"{self.name}-api"
            app = f"services.{self.name}.main:app"
            found.append(Process(name, self.name, "api", app, None, self.port, self.access_log))
        if self.worker:
            found.append(
                Process(f"{self.name}-worker", self.name, "worker", worker_module, self.queue)
            )
        if self.worker and self.has_long_jobs:
            # Long jobs (trainings) have their own queue and worker: the real-time queue
            # never waits behind one.
            runs = runs_queue(self.name)
            found.append(
                Process(f"{self.name}-runs-worker", self.name, "worker", worker_module, runs)
            )
        if self.beat:
            found.append(Process(f"{self.name}-beat", self.name, "beat", worker_module))
        return found


SERVICES: tuple[Service, ...] = (
    Service("ingest", port=8001, access_log=False),
    Service("segment", port=8002, worker=True, beat=True),
    # The storefront's door; its beat drains the decision log every second.
    Service("personalize", port=8003, worker=True, beat=True),
    Service("nlp", port=8004, worker=True),
)

# Belongs to no service: publishes every service's outbox rows. Runs from the "core"
# image (shared dependencies only), as does the one-shot migration.
RELAY = Process("relay", "core", "relay", "shared.relay")
CORE_IMAGE = "core"


def service(name: str) -> Service:
    for candidate in SERVICES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no service {name!r} in the registry")


def processes() -> list[Process]:
    """Every long-running process, in start order: APIs first, then relay, workers, beat."""
    everything = [process for svc in SERVICES for process in svc.processes()]
    by_role = {
        role: [p for p in everything if p.role == role] for role in ("api", "worker", "beat")
    }
    return [*by_role["api"], RELAY, *by_role["worker"], *by_role["beat"]]


def procfile() -> str:
    """``deploy/Procfile``'s text. Worker node names carry $PORT (set per process by
    honcho/foreman) so that ``honcho start -c segment-worker=3`` names each one apart."""
    lines = [PROCFILE_HEADER]
    for process in processes():
        words = process.command()
        if process.role == "worker":
            words += ["-n", f"{process.name}-${{PORT:-0}}@%h"]
        lines.append(f"{process.name}: {' '.join(words)}")
    return "\n".join(lines) + "\n"


PROCFILE_HEADER = """\
# Generated from shared/topology.py: `python -m shared.topology procfile > deploy/Procfile`.
# The same processes as deploy/docker-compose.yml, for a host that provides PostgreSQL and
# Redis itself. Run from the repository root:
#
#   alembic upgrade head                          # first, and after every upgrade
#   honcho start -f deploy/Procfile -e deploy/procfile.env
#
# The migration is not a process here: Procfile runners stop every process as soon as
# one exits."""


def main(argv: list[str]) -> None:
    if argv[1:] == ["procfile"]:
        sys.stdout.write(procfile())
        return
    for process in processes():
        sys.stdout.write(f"{process.name:<20} {process.image:<12} {' '.join(process.command())}\n")


if __name__ == "__main__":
    main(sys.argv)
