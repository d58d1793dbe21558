"""``segmenta demo``'s recommendations: train the recommender, show one customer's list."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.table import Table

from shared.runs import RunStatus


def a_buyer(data: Path) -> str:
    """The customer of the demo shop's first order."""
    with (data / "orders.jsonl").open("rb") as orders:
        customer: str = orjson.loads(orders.readline())["customer_id"]
    return customer


def train_recommender(personalize_url: str, key: str, *, timeout_s: float = 600) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    created = httpx.post(
        f"{personalize_url}/v1/recommenders/runs", json={}, headers=headers, timeout=30
    )
    created.raise_for_status()
    run: dict[str, Any] = created.json()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not RunStatus(run["status"]).terminal:
        time.sleep(0.5)
        run = httpx.get(
            f"{personalize_url}/v1/recommenders/runs/{run['id']}", headers=headers, timeout=30
        ).json()
    return run


def recommendations_table(personalize_url: str, key: str, customer_id: str) -> Table | str:
    run = train_recommender(personalize_url, key)
    if run["status"] != RunStatus.SUCCEEDED:
        return f"[yellow]Recommender run {run['id']} is {run['status']}[/] {run.get('error') or ''}"
    answer = httpx.get(
        f"{personalize_url}/v1/recommendations/{customer_id}",
        params={"n": 5},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    evaluation = (run.get("metrics") or {}).get("evaluation") or {}
    lift = evaluation.get("lift_precision")
    title = f"Recommendations for {customer_id} (model {answer['model_version']}"
    title += f", precision@10 {lift:+.0%} over popularity)" if isinstance(lift, float) else ")"
    table = Table("product", "score", "why", title=title)
    for item in answer["items"]:
        table.add_row(item["product_id"], f"{item['score']:.2f}", item["reason"])
    return table
