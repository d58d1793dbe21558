"""Running the platform as local processes: embedded servers, migrations, supervision."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass

import httpx
from rich.console import Console

from segmenta.embedded import EmbeddedStack
from segmenta.settings import CliSettings, child_env
from segmenta.topology import ProcessSpec, processes
from shared.db import migrate

console = Console(stderr=True)
STATE_FILE = "urls.json"


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    api_url: str
    nlp_url: str
    segment_url: str


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


class Supervisor:
    """Starts processes, notices when one dies, and stops them all in reverse order."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: list[tuple[ProcessSpec, subprocess.Popen[bytes]]] = []

    def start(self, spec: ProcessSpec) -> None:
        # Own session: Ctrl-C reaches only us, and we stop the children in order.
        proc = subprocess.Popen(spec.args, env=self.env, start_new_session=True)  # noqa: S603
        self.running.append((spec, proc))
        console.print(f"  started [cyan]{spec.name}[/] (pid {proc.pid})")

    def dead(self) -> list[str]:
        return [spec.name for spec, proc in self.running if proc.poll() is not None]

    def stop(self, timeout_s: float = 30) -> None:
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for spec, proc in reversed(self.running):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                console.print(f"  {spec.name} did not stop in time: killing it")
                proc.kill()
                proc.wait()
        self.running.clear()


def wait_healthy(api_url: str, supervisor: Supervisor, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if supervisor.dead():
            raise SystemExit(f"process exited during start-up: {', '.join(supervisor.dead())}")
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
        """Block until Ctrl-C, SIGTERM, or one of the processes exits."""
        stopping = False

        def on_term(signum: int, _: object) -> None:
            nonlocal stopping
            stopping = True

        # Both set explicitly: a process started in the background by a shell inherits an
        # ignored SIGINT, and Python then never raises KeyboardInterrupt for it.
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        while not stopping:
            if dead := self.supervisor.dead():
                console.print(f"[red]process exited:[/] {', '.join(dead)}; stopping")
                return
            time.sleep(0.5)


@contextmanager
def running_platform(settings: CliSettings) -> Iterator[Platform]:
    """The whole platform, up and ready, until the block ends."""
    with ExitStack() as stack:
        db_url, redis_url = stack.enter_context(backing_services(settings))
        console.print("[bold]Migrating[/] the schema")
        migrate(db_url)
        api_url = f"http://127.0.0.1:{settings.ingest_port}"
        nlp_url = f"http://127.0.0.1:{settings.nlp_port}"
        segment_url = f"http://127.0.0.1:{settings.segment_port}"
        endpoints = Endpoints(db_url, redis_url, api_url, nlp_url, segment_url)
        env = child_env(SEGMENTA_DATABASE_URL=db_url, SEGMENTA_REDIS_URL=redis_url)
        supervisor = Supervisor(env)
        stack.callback(supervisor.stop)
        console.print("[bold]Starting processes[/]")
        ports = (settings.ingest_port, settings.nlp_port, settings.segment_port)
        for spec in processes(*ports, data_dir=str(settings.data_dir.resolve())):
            supervisor.start(spec)
        for url in (api_url, nlp_url, segment_url):
            wait_healthy(url, supervisor)
        state = settings.data_dir / STATE_FILE
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps(asdict(endpoints)))
        stack.callback(state.unlink, missing_ok=True)
        stack.callback(console.print, "[bold]Stopping[/] the platform")
        yield Platform(endpoints, supervisor)
