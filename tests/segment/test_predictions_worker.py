"""A churn model asked for through the segment API, trained by the real runs worker (its
outbox row relayed to ``segment.runs``), and read back through the API."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.auth import create_api_key
from shared.contracts import SEGMENT_TRAIN_PREDICTION, queue_for
from shared.db import session_scope
from tests.segment.prediction_shop import build_history_shop
from tests.support.http import auth
from tests.support.servers import Process, start_api, start_worker
from tests.support.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass(frozen=True)
class Stack:
    api_url: str
    logs: Path


@pytest.fixture(scope="module")
def stack(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The segment API, the outbox relay and the runs worker (nothing else is needed)."""
    stack_env = {
        **env,
        "SEGMENTA_SEGMENT_RETRAIN_EVERY_S": "0",
        "SEGMENTA_PREDICTION_RETRAIN_EVERY_S": "0",
        "SEGMENTA_PREDICTION_HORIZON_DAYS": "60",
    }
    logs = tmp_path_factory.mktemp("predictions")
    with ExitStack() as started:  # a process that fails to start stops those before it
        api, url = start_api(stack_env, logs / "api.log", app="services.segment.main:app")
        started.callback(api.stop)
        relay = Process([sys.executable, "-m", "shared.relay"], stack_env, logs / "relay.log")
        started.callback(relay.stop)
        queue = queue_for(SEGMENT_TRAIN_PREDICTION)
        runs = start_worker("services.segment.worker", queue, stack_env, logs / "runs.log")
        started.callback(runs.stop)
        yield Stack(url, logs)


def test_a_churn_model_trains_on_the_runs_worker(stack: Stack, engine: Engine) -> None:
    shop = build_history_shop(engine, customers=300, seed=41)
    with session_scope(engine) as session:
        tenant = session.execute(
            text("SELECT name FROM tenant WHERE id = :t"), {"t": shop.tenant_id}
        ).scalar_one()
        key = create_api_key(
            session, client="ops", scopes=["admin"], tenant=tenant or f"x-{uuid.uuid4()}"
        ).key
    with httpx.Client(base_url=stack.api_url, headers=auth(key), timeout=30) as client:
        asked = client.post("/v1/predictions", json={"model": "churn"})
        assert asked.status_code == 202, asked.text
        run_id = asked.json()["id"]

        def finished() -> bool:
            status = client.get(f"/v1/predictions/{run_id}").json()["status"]
            return bool(status in {"succeeded", "failed"})

        runs_log = stack.logs / "runs.log"
        wait_until(finished, 180, f"run {run_id} to finish\n{runs_log.read_text()[-3000:]}")
        run = client.get(f"/v1/predictions/{run_id}").json()
        assert run["status"] == "succeeded", run["error"]
        assert run["active"] is True
        assert run["horizon_days"] == 60  # the worker's setting
        assert run["metrics"]["auc"] > 0.7
        top = client.get(f"/v1/predictions/{run_id}/scores?limit=5").json()["items"]
        assert len(top) == 5
        customer = client.get(f"/v1/customers/{top[0]['customer_id']}").json()
        assert customer["predictions"][0]["prediction_id"] == run_id
        assert customer["scores"]["churn"] == pytest.approx(top[0]["probability"])
