"""Prometheus metrics of the personalize API."""

from __future__ import annotations

from prometheus_client import Counter

DECISIONS = Counter(
    "segmenta_personalize_decisions_total", "Offer answers, by strategy", ["strategy"]
)
# Fallback answers are logged straight to Postgres; with Postgres down too, they cannot be
# and the request is refused (503).
UNLOGGED = Counter(
    "segmenta_personalize_decisions_unlogged_total",
    "Offer requests refused (503) because neither Redis nor Postgres could log the decision",
)
