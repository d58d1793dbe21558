"""What the demo prints once its data went through the pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from shared.contracts.texts import ReviewDetails, TranscriptDetails, read_details
from shared.models import Tenant, TextAnalysis
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


# Read through the details contract instead of JSON paths in SQL: the demo shop has a few
# thousand analyses, and a renamed field then fails here by name instead of counting 0.
def _sentiment_counts(engine: Engine, *, tenant: str) -> dict[_Group, list[int]]:
    """Per (kind, status, label): analyses, then how many show each of ``_FLAGS``."""
    query = (
        select(TextAnalysis)
        .join(Tenant, col(Tenant.id) == TextAnalysis.tenant_id)
        .where(Tenant.name == tenant)
    )
    counts: dict[_Group, list[int]] = {}
    with Session(engine) as session:
        for a in session.exec(query):
            where = f"details of text analysis {a.id}"
            details = read_details(a.source_kind, a.details, where=where)
            row = counts.setdefault((a.source_kind, a.status, a.label), [0] * (1 + len(_FLAGS)))
            row[0] += 1
            for i, flag in enumerate(_FLAGS, start=1):
                row[i] += flag(details)
    return counts


_Group = tuple[str, str, str | None]
_Details = ReviewDetails | TranscriptDetails | None


def _moved(direction: str) -> Callable[[_Details], bool]:
    def moved(details: _Details) -> bool:
        return (
            isinstance(details, TranscriptDetails)
            and details.trajectory is not None
            and details.trajectory.direction == direction
        )

    return moved


_FLAGS: tuple[Callable[[_Details], bool], ...] = (
    _moved("improved"),
    _moved("worsened"),
    lambda d: isinstance(d, TranscriptDetails) and d.escalation,
    lambda d: isinstance(d, TranscriptDetails) and d.churn_risk,
    lambda d: isinstance(d, ReviewDetails) and d.rating_mismatch,
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
    counts = _sentiment_counts(engine, tenant=tenant)
    # The order SQL's ORDER BY gave: a missing label after the others.
    for kind, status, label in sorted(counts, key=lambda g: (g[0], g[1], g[2] is None, g[2])):
        shown = [str(n) if n else "" for n in counts[kind, status, label]]
        table.add_row(kind, status, label or "-", *shown)
    return table


def train_segmentation(segment_url: str, key: str, *, timeout_s: float = 900) -> dict[str, Any]:
    """Ask the segment API for a run, follow its progress, and return its final state.

    When the active run was trained on the same records with the same parameters (a
    restart on unchanged data), that run comes back at once, marked ``unchanged``."""
    headers = {"Authorization": f"Bearer {key}"}
    body = {"algorithm": "kmeans", "k": "auto", "promote": "always", "skip_if_unchanged": True}
    created = httpx.post(f"{segment_url}/v1/segmentations", json=body, headers=headers, timeout=30)
    created.raise_for_status()
    if created.json().get("unchanged"):
        return dict(created.json())
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
