"""The demo's churn report: train the churn model through the segment API, then list the
customers it rates most at risk with the features that pushed their score."""

from __future__ import annotations

import time
from typing import Any

import httpx
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, text

from shared.runs import RunStatus

_TOP = text(
    """
    SELECT c.customer_id, s.probability, s.reasons
    FROM prediction_score s JOIN customer c ON c.id = s.customer_pk
    WHERE s.run_id = :run ORDER BY s.probability DESC, s.customer_pk LIMIT :n
    """
)
_BASELINES = {
    "recency_only": "recency alone",
    "bgnbd_expected_purchases": "BG/NBD expected purchases",
}


def train_churn(segment_url: str, key: str, *, timeout_s: float = 900) -> dict[str, Any]:
    """Ask for a churn run of the present, follow it, and return its final state."""
    headers = {"Authorization": f"Bearer {key}"}
    created = httpx.post(
        f"{segment_url}/v1/predictions", json={"model": "churn"}, headers=headers, timeout=30
    )
    created.raise_for_status()
    run: dict[str, Any] = created.json()
    deadline = time.monotonic() + timeout_s
    with Progress(transient=True) as progress:
        task = progress.add_task("training the churn model", total=1.0)
        while time.monotonic() < deadline:
            run = httpx.get(
                f"{segment_url}/v1/predictions/{run['id']}", headers=headers, timeout=30
            ).json()
            progress.update(task, completed=run.get("progress") or 0.0)
            if RunStatus(run["status"]).terminal:
                break
            time.sleep(0.5)
    return run


def _reason(reason: dict[str, Any]) -> str:
    sign = "+" if reason["push"] >= 0 else "-"
    return f"{reason['feature']} = {reason['value']:.4g} ({sign}{abs(reason['push']):.0%})"


def churn_risks_table(engine: Engine, run: dict[str, Any], *, top: int = 10) -> Table:
    """The run's ``top`` highest churn probabilities, with their reasons."""
    table = Table("customer", "P(churn)", "top reasons", title=report_title(run))
    with engine.connect() as connection:
        for customer_id, probability, reasons in connection.execute(
            _TOP, {"run": run["id"], "n": top}
        ):
            table.add_row(
                str(customer_id),
                f"{probability:.0%}",
                "; ".join(_reason(reason) for reason in reasons or []),
            )
    return table


def report_title(run: dict[str, Any]) -> str:
    """What the run served and how it measured against the baselines."""
    figures = run.get("metrics") or {}
    baselines = figures.get("baselines") or {}
    auc = {name: (baselines.get(name) or {}).get("auc") for name in _BASELINES}
    against = ", ".join(f"{label} {auc[name]}" for name, label in _BASELINES.items())
    served = figures.get("served", "model")
    scores = (
        f"AUC {figures.get('auc')} against {against}"
        if served == "model"
        else f"serving the baseline {_BASELINES.get(served, served)} ({against}): the boosted "
        "model ranked the validation customers worse"
    )
    calibration = f"ECE {figures.get('ece')}, {figures.get('calibration')} calibration"
    return f"Top churn risks (run {run['id']}: {scores}; {calibration})"


def churn_risks(segment_url: str, key: str, engine: Engine) -> Table | str:
    """What ``segmenta demo`` prints: the top churn risks, or why there are none."""
    run = train_churn(segment_url, key)
    if run["status"] != RunStatus.SUCCEEDED:
        return f"[yellow]Churn run {run['id']} is {run['status']}[/] {run.get('error') or ''}"
    return churn_risks_table(engine, run)
