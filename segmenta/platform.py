"""Running the platform as local processes: embedded servers, migrations, supervision."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass

import httpx

from segmenta.console import make_console
from segmenta.embedded import EmbeddedStack
from segmenta.settings import CliSettings, child_env
from segmenta.supervisor import GaveUpError, LocalProcess, Supervisor
from shared.db import migrate
from shared.topology import processes

console = make_console(stderr=True)
STATE_FILE = "urls.json"
PROCESSES_FILE = "processes.json"  # {name: pid}, kept by the supervisor


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    api_url: str
    nlp_url: str
    segment_url: str
    personalize_url: str = ""  # (absent from a state file written by an older version)


def read_state(settings: CliSettings) -> Endpoints | None:
    """The URLs of a running ``segmenta up`` in this data folder, if any."""
    path = settings.data_dir / STATE_FILE
    if not path.exists():
        return None
    return Endpoints(**json.loads(path.read_text()))


def database_url(settings: CliSettings) -> str:
    if settings.database_url:
        return settings.database_url
    state = read_state(settings)
    if state is None:
        raise SystemExit(
            "No database: set SEGMENTA_DATABASE_URL, or start the platform with `segmenta up`."
        )
    return state.database_url


@contextmanager
def backing_services(settings: CliSettings) -> Iterator[tuple[str, str]]:
    """Configured Postgres/Redis URLs, or embedded servers started for the duration."""
    if settings.database_url and settings.redis_url:
        yield settings.database_url, settings.redis_url
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]Starting embedded PostgreSQL and Redis[/] in {settings.data_dir}/")
    with EmbeddedStack(settings.data_dir.resolve()) as embedded:
        yield (
            settings.database_url or embedded.database_url,
            settings.redis_url or embedded.redis_url,
        )


def local_processes(settings: CliSettings) -> list[LocalProcess]:
    """The registry's processes as ``segmenta up`` runs them: ports from the settings."""
    data_dir = settings.data_dir.resolve()
    found: list[LocalProcess] = []
    for process in processes():
        port = settings.port(process.image) if process.port else None
        args = process.local_command(
            port=port, node=f"{process.name}@%h", schedule=f"{data_dir}/{process.name}-schedule"
        )
        found.append(LocalProcess(process.name, tuple(args), port))
    return found


def wait_healthy(api_url: str, supervisor: Supervisor, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if dead := supervisor.dead():
            logs = ", ".join(str(supervisor.log_path(name)) for name in dead)
            raise SystemExit(f"process exited during start-up: {', '.join(dead)} (see {logs})")
        try:
            if httpx.get(f"{api_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the API at {api_url} did not become ready")


@dataclass
class Platform:
    endpoints: Endpoints
    supervisor: Supervisor

    def wait(self) -> None:
        """Block until Ctrl-C or SIGTERM, restarting processes that die meanwhile.

        Exits with status 1 when a process keeps dying right after each restart."""
        stopping = False

        def on_term(signum: int, _: object) -> None:
            nonlocal stopping
            stopping = True

        # Both set explicitly: a process started in the background by a shell inherits an
        # ignored SIGINT, and Python then never raises KeyboardInterrupt for it.
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        while not stopping:
            try:
                self.supervisor.check()
            except GaveUpError as exc:
                console.print(f"[red]giving up:[/] {exc}; stopping the platform")
                raise SystemExit(1) from None
            time.sleep(0.2)


@contextmanager
def running_platform(settings: CliSettings) -> Iterator[Platform]:
    """The whole platform, up and ready, until the block ends."""
    with ExitStack() as stack:
        db_url, redis_url = stack.enter_context(backing_services(settings))
        console.print("[bold]Migrating[/] the schema")
        migrate(db_url)
        api_url, nlp_url, segment_url, personalize_url = (
            f"http://127.0.0.1:{settings.port(name)}"
            for name in ("ingest", "nlp", "segment", "personalize")
        )
        endpoints = Endpoints(db_url, redis_url, api_url, nlp_url, segment_url, personalize_url)
        env = child_env(SEGMENTA_DATABASE_URL=db_url, SEGMENTA_REDIS_URL=redis_url)
        supervisor = Supervisor(
            env,
            settings.data_dir.resolve() / "logs",
            pid_file=settings.data_dir.resolve() / PROCESSES_FILE,
        )
        stack.callback(supervisor.stop)
        console.print(f"[bold]Starting processes[/] (their logs: {supervisor.log_dir}/)")
        specs = local_processes(settings)
        for spec in specs:
            supervisor.start(spec)
        for spec in specs:
            if spec.port:
                wait_healthy(f"http://127.0.0.1:{spec.port}", supervisor)
        state = settings.data_dir / STATE_FILE
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps(asdict(endpoints)))
        stack.callback(state.unlink, missing_ok=True)
        stack.callback(console.print, "[bold]Stopping[/] the platform")
        yield Platform(endpoints, supervisor)
