"""`segmenta up` keeps the platform up: a process that dies is restarted, the rest serve on."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from segmenta.supervisor import GaveUpError, LocalProcess, Supervisor
from tests.cli.test_cli import embedded_env


def _crashing(code: int) -> LocalProcess:
    return LocalProcess("crasher", (sys.executable, "-c", f"import sys; sys.exit({code})"))


def _run_checks(supervisor: Supervisor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervisor.check()
        time.sleep(0.05)


@pytest.mark.unit
def test_a_dead_process_is_restarted_with_growing_backoff_and_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supervisor = Supervisor({}, tmp_path / "logs", max_quick_failures=10)
    supervisor.start(_crashing(3))
    try:
        _run_checks(supervisor, 3.6)  # exits at once: restarts after 1 s, then 2 s
    finally:
        supervisor.stop()
    err = capsys.readouterr().err
    assert "process exited: crasher (exit code 3); restarting in 1s" in err
    assert "process exited: crasher (exit code 3); restarting in 2s" in err
    assert err.count("restarted crasher") == 2


@pytest.mark.unit
def test_it_gives_up_on_a_process_that_keeps_failing_at_start(tmp_path: Path) -> None:
    supervisor = Supervisor({}, tmp_path / "logs", max_quick_failures=2, max_backoff_s=0.1)
    supervisor.start(_crashing(7))
    try:
        with pytest.raises(GaveUpError, match=r"crasher exited \(exit code 7\) 3 times in a row"):
            _run_checks(supervisor, 10)
    finally:
        supervisor.stop()


def _worker_pid(up: psutil.Process, module: str) -> int | None:
    for child in up.children():
        try:
            cmdline = child.cmdline()
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue  # the killed one, not reaped yet
        if module in cmdline and "worker" in cmdline:
            return child.pid
    return None


@pytest.mark.e2e
@pytest.mark.slow
def test_a_killed_worker_comes_back_while_the_api_keeps_answering(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_env = embedded_env(env, tmp_path)
    api = f"http://127.0.0.1:{run_env['SEGMENTA_INGEST_PORT']}"
    log = tmp_path / "up.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "segmenta", "up"],
            env=run_env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / "data" / "urls.json").exists():
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            assert proc.poll() is None, log.read_text()[-4000:]
            time.sleep(0.3)
        up = psutil.Process(proc.pid)
        killed = _worker_pid(up, "services.nlp.worker")
        assert killed is not None
        psutil.Process(killed).send_signal(signal.SIGKILL)

        deadline, back = time.monotonic() + 20, None
        while back is None or back == killed:
            assert time.monotonic() < deadline, f"not restarted:\n{log.read_text()[-4000:]}"
            assert httpx.get(f"{api}/healthz", timeout=2).status_code == 200
            back = _worker_pid(up, "services.nlp.worker")
            time.sleep(0.1)
        assert "process exited: nlp-worker (SIGKILL); restarting in 1s" in log.read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:  # stopped as a person would: its processes stop with it
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
