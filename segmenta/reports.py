"""What the demo prints once its data went through the pipeline."""

from __future__ import annotations

import time
from typing import Any

import httpx
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, text

from shared.runs import RunStatus

_ANALYSED = text(
    """
    SELECT (SELECT count(*) FROM review r JOIN tenant t ON t.id = r.tenant_id
            WHERE t.name = :tenant)
         + (SELECT count(*) FROM transcript r JOIN tenant t ON t.id = r.tenant_id
            WHERE t.name = :tenant),
           (SELECT count(DISTINCT (a.source_kind, a.source_pk)) FROM text_analysis a
            JOIN tenant t ON t.id = a.tenant_id WHERE t.name = :tenant)
    """
)


def wait_for_analyses(engine: Engine, *, tenant: str, timeout_s: float = 600) -> bool:
    """Show the nlp service's progress on the tenant's texts; False if it timed out."""
    deadline = time.monotonic() + timeout_s
    with Progress(transient=True) as progress:
        task = progress.add_task("analysing reviews and transcripts", total=None)
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                total, done = conn.execute(_ANALYSED, {"tenant": tenant}).one()
            progress.update(task, total=total, completed=done)
            if done >= total:
                return True
            time.sleep(0.5)
    return False


_SUMMARY = text(
    """
    SELECT a.source_kind, a.status, a.label, count(*),
           count(*) FILTER (WHERE a.details->'trajectory'->>'direction' = 'improved'),
           count(*) FILTER (WHERE a.details->'trajectory'->>'direction' = 'worsened'),
           count(*) FILTER (WHERE (a.details->>'escalation')::boolean),
           count(*) FILTER (WHERE (a.details->>'churn_risk')::boolean),
           count(*) FILTER (WHERE (a.details->>'rating_mismatch')::boolean)
    FROM text_analysis a JOIN tenant t ON t.id = a.tenant_id
    WHERE t.name = :tenant
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    """
)


def sentiment_summary(engine: Engine, *, tenant: str) -> Table:
    table = Table(
        "kind",
        "status",
        "label",
        "count",
        "mood improved",
        "mood worsened",
        "escalated",
        "churn cue",
        "vs stars",
        title="Sentiment of the demo shop's reviews and support transcripts",
    )
    with engine.connect() as conn:
        for kind, status, label, *counts in conn.execute(_SUMMARY, {"tenant": tenant}):
            shown = [str(n) if n else "" for n in counts]
            table.add_row(kind, status, label or "-", *shown)
    return table


def train_segmentation(segment_url: str, key: str, *, timeout_s: float = 900) -> dict[str, Any]:
    """Ask the segment API for a run, follow its progress, and return its final state."""
    headers = {"Authorization": f"Bearer {key}"}
    body = {"algorithm": "kmeans", "k": "auto", "promote": "always"}
    created = httpx.post(f"{segment_url}/v1/segmentations", json=body, headers=headers, timeout=30)
    created.raise_for_status()
    run_id = created.json()["id"]
    deadline = time.monotonic() + timeout_s
    run: dict[str, Any] = created.json()
    with Progress(transient=True) as progress:
        task = progress.add_task("training the segmentation", total=1.0)
        while time.monotonic() < deadline:
            run = httpx.get(f"{segment_url}/v1/segmentations/{run_id}", headers=headers).json()
            progress.update(task, completed=run.get("progress") or 0.0)
            status = run["status"]
            if status == RunStatus.FAILED or (status == RunStatus.SUCCEEDED and run["active"]):
                break
            time.sleep(0.5)
    return run


def segments_table(segment_url: str, key: str) -> Table:
    headers = {"Authorization": f"Bearer {key}"}
    segments = httpx.get(f"{segment_url}/v1/segments", headers=headers, timeout=30).json()
    table = Table(
        "key",
        "segment",
        "customers",
        "revenue share",
        "CLV share",
        "rule",
        title="Active segmentation of the demo shop",
    )
    for s in segments["segments"]:
        stats = s.get("stats") or {}
        share = [
            f"{stats[k]:.0%}" if stats.get(k) is not None else "-"
            for k in ("revenue_share", "clv_share")
        ]
        table.add_row(
            s["key"], s["name"], f"{s['size']:,}", *share, (s.get("rules") or {}).get("text") or ""
        )
    return table
