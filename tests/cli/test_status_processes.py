"""``segmenta status`` names each supervised process's state: running, paused, gone."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from segmenta.ops_cli import process_states
from segmenta.settings import CliSettings
from segmenta.supervisor import LocalProcess, Supervisor

pytestmark = pytest.mark.integration
SLEEPER = (sys.executable, "-c", "import time; time.sleep(60)")


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_status_follows_the_supervisor_through_a_pause_a_kill_and_a_restart(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "processes.json"
    supervisor = Supervisor({}, tmp_path / "logs", pid_file=pid_file, max_backoff_s=0.1)
    settings = CliSettings(data_dir=tmp_path)
    try:
        supervisor.start(LocalProcess("api", SLEEPER))
        supervisor.start(LocalProcess("worker", SLEEPER))
        assert set(json.loads(pid_file.read_text())) == {"api", "worker"}
        assert all(s in {"running", "sleeping"} for s in process_states(settings).values())
        worker = supervisor.pids()["worker"]
        os.kill(worker, signal.SIGSTOP)
        wait_for(lambda: process_states(settings)["worker"] == "stopped")
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: process_states(settings)["worker"] == "gone")

        def restarted() -> bool:
            supervisor.check()
            return supervisor.pids()["worker"] != worker

        wait_for(restarted)
        assert json.loads(pid_file.read_text())["worker"] == supervisor.pids()["worker"]
        assert process_states(settings)["worker"] in {"running", "sleeping"}
    finally:
        supervisor.stop(timeout_s=5)
    assert not pid_file.exists()
    assert process_states(settings) == {}
