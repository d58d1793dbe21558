"""Processes and measurements around them: uvicorn servers, the machine, RSS and CPU."""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import httpx
import psutil
import psycopg

from shared.topology import API_SERVER_OPTIONS
from tests.support.servers import Process, free_port


def start_uvicorn(app: str, env: Mapping[str, str], log: Path) -> tuple[Process, str]:
    """``uvicorn <app>`` as production starts it (one process, no access log)."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--no-access-log", *API_SERVER_OPTIONS]
    process = Process(args, env, log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"{app} exited:\n{process.output()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.stop()
    raise TimeoutError(f"{app} did not start:\n{process.output()}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        settings = {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("server_version", "synchronous_commit", "shared_buffers", "fsync")
        }
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": settings["server_version"],
        "postgres settings": (
            f"synchronous_commit={settings['synchronous_commit']}, fsync={settings['fsync']}, "
            f"shared_buffers={settings['shared_buffers']}"
        ),
    }


@dataclass
class RssSampler:
    """Samples a process's resident memory every ``interval`` seconds in a thread."""

    pid: int
    interval: float = 0.25
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(self._rss())

    def __enter__(self) -> RssSampler:
        self.samples.append(self._rss())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.samples.append(self._rss())

    @property
    def start(self) -> int:
        return self.samples[0]

    @property
    def peak(self) -> int:
        return max(self.samples)

    @property
    def end(self) -> int:
        return self.samples[-1]


KINDS = ("server", "load generator", "Postgres", "other processes")


@dataclass
class CpuShare:
    """CPU seconds during a measurement: the server, this load generator, Postgres, others."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    busy_s: float = 0.0  # all cores, every process and the kernel
    wall_s: float = 0.0

    def cores(self, kind: str) -> float:
        return self.seconds[kind] / self.wall_s if self.wall_s else 0.0

    def describe(self) -> str:
        cores = os.cpu_count() or 1
        util = self.busy_s / (self.wall_s * cores) if self.wall_s else 0.0
        used = ", ".join(f"{kind} {self.cores(kind):.2f}" for kind in KINDS)
        return f"cores used (of {cores}): {used}; machine busy {util:.0%}"


class CpuMeter:
    """Measures a :class:`CpuShare` over a ``with`` block, from every process's CPU time.

    Postgres counts this benchmark's database's backends, the server's own helper
    processes and every backend that exited during the block (the postmaster's children's
    time, which cannot tell databases apart); live backends of other databases count as
    other processes.
    """

    def __init__(self, server_pid: int | None, database: str, postmaster: int | None) -> None:
        self.server_pid, self.database, self.me = server_pid, database, os.getpid()
        self.postmaster = postmaster
        self.share = CpuShare()

    def _kind(self, pid: int, name: str, cmdline: list[str]) -> str:
        if pid == self.server_pid:
            return "server"
        if pid == self.me:
            return "load generator"
        title = " ".join(cmdline)
        if name in ("postgres", "postmaster") or title.startswith("postgres:"):
            if self.database in title:
                return "Postgres"
            is_backend = "127.0.0.1(" in title or "[local]" in title or "::1(" in title
            return "other processes" if is_backend else "Postgres"
        return "other processes"

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        out: dict[int, tuple[str, float]] = {}
        for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            times = proc.info.get("cpu_times")
            if times is None:
                continue
            kind = self._kind(proc.pid, proc.info.get("name") or "", proc.info.get("cmdline") or [])
            seconds = times.user + times.system
            if proc.pid == self.postmaster:  # backends that exited are counted here
                seconds += times.children_user + times.children_system
            out[proc.pid] = (kind, float(seconds))
        return out

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def __enter__(self) -> CpuMeter:
        self._start = (time.perf_counter(), self._busy(), self._snapshot())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        wall, busy, before = self._start
        after = self._snapshot()
        self.share.wall_s = time.perf_counter() - wall
        self.share.busy_s = self._busy() - busy
        for pid, (kind, seconds) in after.items():
            self.share.seconds[kind] += seconds - before.get(pid, (kind, 0.0))[1]


def postmaster_pid(database_url: str) -> int | None:
    with psycopg.connect(database_url) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        try:
            return int(psutil.Process(int(backend)).ppid())
        except psutil.Error:
            return None


def wait_for_quiet(
    database: str, postmaster: int | None, limit_s: float = 120, threshold: float = 0.2
) -> float:
    """Wait until other processes use under ``threshold`` cores; their last use in cores."""
    deadline = time.monotonic() + limit_s
    while True:
        with CpuMeter(None, database, postmaster) as meter:
            time.sleep(1.0)
        other = meter.share.cores("other processes")
        if other < threshold or time.monotonic() > deadline:
            return other
