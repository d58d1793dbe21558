"""Relay, workers and APIs as real processes, restartable mid-test."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.support.servers import Process, start_api, start_worker


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str] | None = None
) -> None:
    """Wait for ``condition``; ``logs`` is read when the wait times out, for the message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{logs()}" if logs else ""))


class ServiceStack:
    """An outbox relay, one service's Celery worker and (optionally) its API."""

    def __init__(self, service: str, env: dict[str, str], logs: Path) -> None:
        self.service, self.env, self.logs = service, env, logs
        self.restarts = 0
        self.relay = Process([sys.executable, "-m", "shared.relay"], env, logs / "relay.log")
        self.worker = self._start_worker()
        self.api: Process | None = None
        self.api_url = ""

    def _start_worker(self) -> Process:
        log = self.logs / f"{self.service}-worker-{self.restarts}.log"
        return start_worker(f"services.{self.service}.worker", self.service, self.env, log)

    def start_api(self, app: str) -> str:
        self.api, self.api_url = start_api(self.env, self.logs / "api.log", app=app)
        return self.api_url

    def kill_worker(self) -> None:
        """SIGKILL the worker and its pool children: no chance to ack or clean up."""
        parent = psutil.Process(self.worker.proc.pid)
        for proc in [*parent.children(recursive=True), parent]:
            proc.send_signal(signal.SIGKILL)
        self.worker.proc.wait(10)
        self.worker.stop()
        self.restarts += 1
        self.worker = self._start_worker()

    def worker_output(self) -> str:
        return self.worker.output()

    def stop(self) -> None:
        for process in (self.api, self.worker, self.relay):
            if process is not None:
                process.stop()
