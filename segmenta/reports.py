"""What the demo prints once its data went through the pipeline."""

from __future__ import annotations

import time

from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, text

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
