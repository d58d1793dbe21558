"""Prometheus metrics of the ingest API."""

from __future__ import annotations

from prometheus_client import Counter

RECORDS = Counter(
    "segmenta_ingest_records_total", "Records received, by kind and outcome", ["kind", "outcome"]
)


def count_records(
    kind: str, *, accepted: int, duplicates: int, suppressed: int, rejected: int
) -> None:
    for outcome, n in (
        ("accepted", accepted),
        ("duplicate", duplicates),
        ("suppressed", suppressed),
        ("rejected", rejected),
    ):
        if n:
            RECORDS.labels(kind, outcome).inc(n)
