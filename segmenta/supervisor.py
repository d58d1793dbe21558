"""Keeps the processes of ``segmenta up`` running: restarts with backoff, stops in order.

A process that dies is started again after 1 s, 2 s, 4 s, ... (at most ``max_backoff_s``);
the others keep serving meanwhile. Only a process that keeps dying soon after each start
(``max_quick_failures`` times in a row, each within ``quick_s``) is a fault a restart cannot
fix: then the supervisor gives up and the platform stops with a message naming it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from segmenta.console import make_console

console = make_console(stderr=True)


@dataclass(frozen=True)
class LocalProcess:
    name: str
    args: tuple[str, ...]
    port: int | None = None


class GaveUpError(Exception):
    """A process kept failing right after each restart."""


@dataclass
class _Child:
    spec: LocalProcess
    proc: subprocess.Popen[bytes]
    started_at: float
    quick_failures: int = 0
    restart_at: float | None = None


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return signal.Signals(-returncode).name
    return f"exit code {returncode}"


class Supervisor:
    """Starts processes with their output in ``log_dir/<name>.log``, restarts the ones that
    die, and stops them all in reverse order."""

    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        *,
        max_quick_failures: int = 5,
        quick_s: float = 30,
        max_backoff_s: float = 30,
        pid_file: Path | None = None,
    ) -> None:
        self.env = env
        # {name: pid} of the processes now running, rewritten at each (re)start, for
        # ``segmenta status``.
        self.pid_file = pid_file
        self.log_dir = log_dir
        self.max_quick_failures = max_quick_failures
        self.quick_s = quick_s
        self.max_backoff_s = max_backoff_s
        self.children: list[_Child] = []

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, spec: LocalProcess) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Own session: Ctrl-C reaches only us, and we stop the children in order. Output
        # goes to a file: banners and worker logs would bury the CLI's own messages.
        with self.log_path(spec.name).open("ab") as log:
            return subprocess.Popen(  # noqa: S603
                spec.args,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self, spec: LocalProcess) -> None:
        proc = self._spawn(spec)
        self.children.append(_Child(spec, proc, time.monotonic()))
        self._write_pids()
        console.print(f"  started [cyan]{spec.name}[/] (pid {proc.pid})")

    def dead(self) -> list[str]:
        return [c.spec.name for c in self.children if c.proc.poll() is not None]

    def pids(self) -> dict[str, int]:
        return {c.spec.name: c.proc.pid for c in self.children}

    def _write_pids(self) -> None:
        if self.pid_file is not None:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            self.pid_file.write_text(json.dumps(self.pids()))

    def check(self) -> None:
        """Schedule restarts for processes that died and start those that are due.

        Raises GaveUpError when one has failed quickly too many times in a row."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.proc = self._spawn(child.spec)
                    child.started_at, child.restart_at = now, None
                    self._write_pids()
                    console.print(f"  restarted [cyan]{child.spec.name}[/] (pid {child.proc.pid})")
                continue
            returncode = child.proc.poll()
            if returncode is None:
                continue
            self._schedule_restart(child, returncode, now)

    def _schedule_restart(self, child: _Child, returncode: int, now: float) -> None:
        name = child.spec.name
        ran_s = now - child.started_at
        child.quick_failures = child.quick_failures + 1 if ran_s < self.quick_s else 1
        if child.quick_failures > self.max_quick_failures:
            raise GaveUpError(
                f"{name} exited ({describe_exit(returncode)}) {child.quick_failures} times in a "
                f"row, each within {self.quick_s:.0f} s of its start; see {self.log_path(name)}"
            )
        delay = min(2.0 ** (child.quick_failures - 1), self.max_backoff_s)
        child.restart_at = now + delay
        console.print(
            f"[red]process exited:[/] {name} ({describe_exit(returncode)}); "
            f"restarting in {delay:.0f}s"
        )

    def stop(self, timeout_s: float = 30) -> None:
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in reversed(self.children):
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                console.print(f"  {child.spec.name} did not stop in time: killing it")
                child.proc.kill()
                child.proc.wait()
        self.children.clear()
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
