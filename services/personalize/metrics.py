"""Prometheus metrics of the personalize API."""

from __future__ import annotations

from prometheus_client import Counter

DECISIONS = Counter(
    "segmenta_personalize_decisions_total", "Offer answers, by strategy", ["strategy"]
)
# Fallback answers are logged straight to Postgres; with Postgres down too, they cannot be.
UNLOGGED = Counter(
    "segmenta_personalize_decisions_unlogged_total",
    "Fallback answers given while neither Redis nor Postgres could log them",
)
