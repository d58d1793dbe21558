"""The operator's tools on a real relay and worker: ``segmenta status``, the same numbers
in ``/metrics``, and ``segmenta dead-letters list/show/replay`` (replay is idempotent)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from segmenta.cli import app
from shared.db import session_scope
from shared.outbox import enqueue
from tests.support.probe import PROBE_TASK
from tests.support.servers import Process, free_port, start_worker
from tests.support.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def cli(env: dict[str, str], *args: str) -> Any:
    cli_env = {
        "SEGMENTA_DATABASE_URL": env["SEGMENTA_DATABASE_URL"],
        "SEGMENTA_REDIS_URL": env["SEGMENTA_REDIS_URL"],
    }
    result = CliRunner().invoke(app, list(args), env=cli_env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), {"t": PROBE_TASK}).scalar_one())


def metric(api: str, name: str) -> float:
    for line in httpx.get(f"{api}/metrics", timeout=10).text.splitlines():
        if line.startswith(name):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_status_shows_a_dead_letter_and_replay_does_its_work_once(
    probe_env: dict[str, str], engine: Engine, api: str, tmp_path: Path
) -> None:
    with session_scope(engine) as session:
        session.execute(text("INSERT INTO probe_poison VALUES (13)"))
        tenant = session.execute(text("SELECT id FROM tenant WHERE name = 'probe'")).scalar_one()
        enqueue(session, tenant_id=tenant, task_name=PROBE_TASK, subject_ids=list(range(1, 21)))
    worker = start_worker("tests.support.probe_worker", "ingest", probe_env, tmp_path / "w.log")
    relay = Process([sys.executable, "-m", "shared.relay"], probe_env, tmp_path / "relay.log")
    try:
        drained = "SELECT count(*) FROM outbox WHERE task_name = :t"
        wait_until(lambda: scalar(engine, drained) == 0, 120, "the outbox to drain")
        status = cli(probe_env, "status", "--json")
        groups = [g for g in status["dead_letters"] if g["task_name"] == PROBE_TASK]
        assert [(g["reason"], g["count"]) for g in groups] == [("ValueError", 1)]
        assert status["backlog"]["dead_letters"] >= 1
        assert {q["queue"] for q in status["queues"]} >= {"ingest", "segment", "nlp"}
        assert {r["model"] for r in status["runs"]} == {"segmentation", "policy"}
        assert status["erasures_pending"] >= 0
        assert (
            metric(api, 'segmenta_dead_letters_by_reason{reason="ValueError",task="ingest.probe"}')
            == 1
        )
        assert metric(api, 'segmenta_queue_depth{queue="ingest"}') == 0

        listed = cli(probe_env, "dead-letters", "list", "--task", PROBE_TASK, "--json")
        assert [(d["subject_id"], d["attempts"]) for d in listed] == [(13, 3)]
        shown = cli(probe_env, "dead-letters", "show", str(listed[0]["id"]))
        assert "subject 13 is poison" in shown["reason"]

        with session_scope(engine) as session:  # the cause is fixed; the work is replayed
            session.execute(text("DELETE FROM probe_poison"))
        first = cli(probe_env, "dead-letters", "replay", str(listed[0]["id"]))
        again = cli(probe_env, "dead-letters", "replay", str(listed[0]["id"]))
        by_task = cli(probe_env, "dead-letters", "replay", "--task", PROBE_TASK)
        assert first == {"replayed": [listed[0]["id"]], "not_found": []}
        assert again == {"replayed": [], "not_found": [listed[0]["id"]]}
        assert by_task == {"replayed": [], "not_found": []}
        done = "SELECT count(*) FROM probe_effect WHERE subject_id = 13"
        wait_until(lambda: scalar(engine, done) == 1, 60, "the replayed work to be done")
        time.sleep(2)  # a second copy, were there one, would show by now
        assert scalar(engine, "SELECT max(hits) FROM probe_effect") == 1
        assert scalar(engine, "SELECT count(*) FROM probe_effect") == 20
        assert scalar(engine, "SELECT count(*) FROM dead_letter WHERE task_name = :t") == 0
        assert scalar(engine, drained) == 0
    finally:
        relay.stop()
        worker.stop()


def test_unknown_dead_letter_is_named_and_replay_needs_a_target(
    probe_env: dict[str, str],
) -> None:
    env = {
        "SEGMENTA_DATABASE_URL": probe_env["SEGMENTA_DATABASE_URL"],
        "SEGMENTA_REDIS_URL": probe_env["SEGMENTA_REDIS_URL"],
    }
    shown = CliRunner().invoke(app, ["dead-letters", "show", "999999999"], env=env)
    assert shown.exit_code == 2
    assert "no dead letter 999999999" in shown.output
    bare = CliRunner().invoke(app, ["dead-letters", "replay"], env=env)
    assert bare.exit_code == 2
    assert "--task" in bare.output


def test_status_says_which_backing_service_does_not_answer(probe_env: dict[str, str]) -> None:
    down = {**probe_env, "SEGMENTA_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    status = cli(down, "status", "--json")
    assert status["queues"] is None
    assert status["deliveries_unacked"] is None
    assert status["backlog"] is not None  # Postgres still answers
    env = {
        "SEGMENTA_DATABASE_URL": down["SEGMENTA_DATABASE_URL"],
        "SEGMENTA_REDIS_URL": down["SEGMENTA_REDIS_URL"],
    }
    table = CliRunner().invoke(app, ["status"], env=env)
    assert table.exit_code == 0, table.output
    assert "Redis does not answer" in table.output
    assert "outbox:" in table.output
