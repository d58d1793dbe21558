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

from tests.support.servers import Process, free_port


def start_uvicorn(app: str, env: Mapping[str, str], log: Path) -> tuple[Process, str]:
    """``uvicorn <app>`` as production starts it (defaults: one process, access log on)."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
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


@dataclass
class CpuShare:
    """Where the CPU went during a measurement: the server, this load generator, the rest."""

    server_s: float = 0.0
    client_s: float = 0.0
    busy_s: float = 0.0  # all cores, every process
    wall_s: float = 0.0

    @property
    def rest_s(self) -> float:
        """Everything else: mostly Postgres (and the kernel's network work)."""
        return max(0.0, self.busy_s - self.server_s - self.client_s)

    def describe(self) -> str:
        cores = os.cpu_count() or 1
        util = self.busy_s / (self.wall_s * cores) if self.wall_s else 0.0

        def pct(seconds: float) -> str:
            return f"{seconds / self.busy_s:.0%}" if self.busy_s else "-"

        return (
            f"machine busy {util:.0%}; of that: server {pct(self.server_s)}, "
            f"load generator {pct(self.client_s)}, Postgres and rest {pct(self.rest_s)}"
        )


class CpuMeter:
    """Measures a :class:`CpuShare` over a ``with`` block."""

    def __init__(self, server_pid: int | None) -> None:
        self.server = psutil.Process(server_pid) if server_pid else None
        self.me = psutil.Process()
        self.share = CpuShare()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def _server(self) -> float:
        if self.server is None:
            return 0.0
        t = self.server.cpu_times()
        return float(t.user + t.system)

    def _client(self) -> float:
        t = self.me.cpu_times()
        return float(t.user + t.system)

    def __enter__(self) -> CpuMeter:
        self._t0 = (time.perf_counter(), self._busy(), self._server(), self._client())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        wall, busy, server, client = self._t0
        self.share.wall_s = time.perf_counter() - wall
        self.share.busy_s = self._busy() - busy
        self.share.server_s = self._server() - server
        self.share.client_s = self._client() - client
