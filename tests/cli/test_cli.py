"""The operator CLI as a person uses it: real processes, real embedded servers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import Engine

from tests.support.http import count, tenant_of
from tests.support.servers import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def segmenta(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "segmenta", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def embedded_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    clean = {
        k: v for k, v in env.items() if k not in {"SEGMENTA_DATABASE_URL", "SEGMENTA_REDIS_URL"}
    }
    return {
        **clean,
        "SEGMENTA_DATA_DIR": str(tmp_path / "data"),
        "SEGMENTA_INGEST_PORT": str(free_port()),
        "SEGMENTA_NLP_PORT": str(free_port()),
        "SEGMENTA_SEGMENT_PORT": str(free_port()),
        "SEGMENTA_PERSONALIZE_PORT": str(free_port()),
        "PYTHONPATH": str(ROOT),
    }


def test_demo_starts_embedded_servers_loads_a_shop_through_the_api_and_stops(
    env: dict[str, str], tmp_path: Path
) -> None:
    output = segmenta(
        "demo",
        "--no-wait",
        "--customers",
        "300",
        "--storefront-seconds",
        "10",
        env=embedded_env(env, tmp_path),
        cwd=tmp_path,
    )
    assert "Starting embedded PostgreSQL and Redis" in output
    assert "Demo loaded" in output
    for kind in ("customers", "orders", "events", "reviews", "transcripts"):
        assert kind in output
    assert "│ customers   │ 300 " in output
    assert "Sentiment of the demo shop" in output  # every review and transcript analysed
    assert "unsupported_language" in output  # the Swedish and Korean reviews
    assert "Active segmentation of the demo shop" in output  # trained, activated, explained
    assert "offers answered; conversion" in output  # a storefront asked, the bandit learnt
    assert "offer shown most" in output
    assert "/dashboard" in output
    assert not (tmp_path / "data" / "urls.json").exists()  # cleaned up on the way out
    # The processes' own output (Celery's banner, its running-as-root warning, uvicorn's
    # start-up lines) goes to their log files, not into the demo's story.
    for noise in ("superuser privileges", "-------------- ", "Uvicorn running", "[queues]"):
        assert noise not in output, noise
    assert (tmp_path / "data" / "logs" / "nlp-worker.log").is_file()


def test_up_runs_until_ctrl_c_and_then_stops_every_process(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_env = embedded_env(env, tmp_path)
    port = run_env["SEGMENTA_INGEST_PORT"]
    # Its output goes to a file: a pipe nobody reads fills up, and a process blocked
    # writing its shutdown messages to it never stops.
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
        ready = False
        state_file = tmp_path / "data" / "urls.json"
        while time.monotonic() < deadline and not ready:
            time.sleep(0.3)
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                continue
            ready = ready and state_file.exists()
        assert ready, "the platform did not come up"
        state = json.loads(state_file.read_text())
        assert state["api_url"].endswith(port)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert {"redis-server", "python"} <= {c.name() for c in children}  # Redis, API, relay
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(60) == 0
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 60 s after Ctrl-C; its output:\n{log.read_text()[-4000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {[p.pid for p in alive]}"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    pg_port = int(state["database_url"].rsplit(":", 1)[1].split("/")[0])
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", pg_port), timeout=1),
    ):
        pass  # PostgreSQL (a daemon, not our child) was stopped too


def test_keys_are_shown_once_listed_by_prefix_and_revocable(
    env: dict[str, str], tmp_path: Path, api: str, engine: Engine
) -> None:
    created = segmenta(
        "keys",
        "create",
        "--client",
        "storefront",
        "--scopes",
        "offers:read,segments:read",
        "--tenant",
        "cli-shop",
        env=env,
        cwd=tmp_path,
    )
    key = next(line for line in created.splitlines() if line.startswith("sgm_"))
    prefix = key.split("_")[1]
    listed = segmenta("keys", "list", env=env, cwd=tmp_path)
    assert prefix in listed
    # Printed into a pipe, the table is as wide as its rows: no column cut or wrapped.
    row = next(line for line in listed.splitlines() if prefix in line)
    assert "offers:read,segments:read" in row
    assert "storefront" in row
    assert key.rsplit("_", 1)[1] not in listed  # the secret never again
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.post(f"{api}/v1/products", json=[], headers=headers).status_code == 403
    segmenta("keys", "revoke", prefix, env=env, cwd=tmp_path)
    assert httpx.post(f"{api}/v1/products", json=[], headers=headers).status_code == 401


def test_unknown_scopes_are_refused_naming_the_option(env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "segmenta", "keys", "create", "--client", "x", "--scopes", "root"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--scopes" in result.stderr


def test_import_streams_a_file_and_prints_the_counts(
    env: dict[str, str], tmp_path: Path, api: str, engine: Engine
) -> None:
    created = segmenta(
        "keys",
        "create",
        "--client",
        "loader",
        "--scopes",
        "ingest:write",
        "--tenant",
        "cli-import",
        env=env,
        cwd=tmp_path,
    )
    key = next(line for line in created.splitlines() if line.startswith("sgm_"))
    file = tmp_path / "products.csv"
    file.write_text(
        "product_id,name,category,price\n"
        + "".join(f"p-{n},Thing {n},home,{n}.5\n" for n in range(1, 1_001))
        + "p-x,Bad,home,free\n"
    )
    output = segmenta(
        "import", "products", str(file), "--key", key, "--api-url", api, env=env, cwd=tmp_path
    )
    result = json.loads(output[output.index("{") :])
    assert result["accepted"] == 1_000
    assert result["rejected"][0]["index"] == 1_001
    assert result["rejected"][0]["errors"][0]["field"] == "price"
    assert count(engine, "product", tenant_of(engine, key)) == 1_000


def test_clv_fit_prints_the_fitted_parameters_and_holdout_error_as_json(
    env: dict[str, str], tmp_path: Path
) -> None:
    """An analyst's own transactions: here the CDNOW sample, as a plain CSV."""
    from tests.segment.test_clv import read_cdnow

    file = tmp_path / "transactions.csv"
    rows = [f"{c},{d:%Y-%m-%d},{amount}" for c, d, amount in zip(*read_cdnow(), strict=True)]
    file.write_text("customer_id,date,amount\n" + "\n".join(rows) + "\n")
    output = segmenta(
        "clv",
        "fit",
        "--transactions",
        str(file),
        "--calibration-end",
        "1997-09-30",
        "--observation-end",
        "1998-06-30",
        env=env,
        cwd=tmp_path,
    )
    report = json.loads(output[output.index("{") :])
    assert report["customers"] == 2_357
    assert report["bgnbd"]["params"]["r"] == pytest.approx(0.243, rel=0.01)
    assert report["gamma_gamma"]["params"]["q"] == pytest.approx(3.74, rel=0.02)
    assert report["holdout"]["actual"] == 1_882
