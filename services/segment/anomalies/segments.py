"""Segment-level alerts: a segment whose size or value left what its history predicts.

A segment keeps its key across retrains, so each key has a series over the tenant's
succeeded segmentation runs: its size (members) and value (mean revenue per member).
The newest run's figure is compared with a robust forecast from the earlier runs: the
last value plus the median step between runs (a steady trend is no news), give or take
``z`` robust sds of those steps (MAD x 1.4826, never under 5 % of the level).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text
from sqlmodel import Session

from services.segment.anomalies.detectors import MAD_TO_SD

RUNS_LOOKED_AT = 20
_SERIES = text(
    """
    WITH runs AS (
        SELECT id, finished_at FROM segmentation_run
        WHERE tenant_id = :tenant AND status = 'succeeded'
        ORDER BY finished_at DESC, id DESC LIMIT :runs
    )
    SELECT r.id AS run_id, s.key, s.size::float8 AS size,
           coalesce(s.stats ->> 'mean_revenue', '') AS value
    FROM runs r JOIN segment s ON s.run_id = r.id
    ORDER BY r.finished_at, r.id, s.key
    """
)


@dataclass(frozen=True)
class AlertRecord:
    segmentation_run_id: int
    segment_key: str
    metric: str  # "size" or "value"
    observed: float
    expected: float
    lower: float
    upper: float
    size: float  # the robust z
    reason: str


def forecast(history: list[float], *, z: float) -> tuple[float, float, float]:
    """The next value a series predicts, and the band around it."""
    values = np.asarray(history, dtype=np.float64)
    steps = np.diff(values)
    trend = float(np.median(steps)) if len(steps) else 0.0
    mad = float(np.median(np.abs(steps - trend))) if len(steps) else 0.0
    scale = max(MAD_TO_SD * mad, 0.05 * abs(values[-1]), 1e-9)
    expected = float(values[-1] + trend)
    return expected, expected - z * scale, expected + z * scale


def judge(
    series: Mapping[str, Sequence[tuple[int, float | None]]],
    *,
    metric: str,
    z: float,
    min_history: int,
) -> list[AlertRecord]:
    """Alerts for the keys whose newest figure is outside their forecast band.

    ``series[key]`` is the (run id, figure) pairs of that key, oldest first; the last
    pair is judged against the ones before it."""
    alerts = []
    for key, points in sorted(series.items()):
        known = [(run, value) for run, value in points if value is not None]
        if points[-1][1] is None or len(known) < min_history + 1:
            continue
        *history, (run_id, observed) = known
        expected, lower, upper = forecast([v for _, v in history if v is not None], z=z)
        if observed is None or lower <= observed <= upper:
            continue
        spread = (upper - expected) / z
        size = (observed - expected) / spread
        direction = "above" if observed > upper else "below"
        alerts.append(
            AlertRecord(
                segmentation_run_id=run_id,
                segment_key=key,
                metric=metric,
                observed=round(observed, 4),
                expected=round(expected, 4),
                lower=round(lower, 4),
                upper=round(upper, 4),
                size=round(size, 4),
                reason=f"{metric} {observed:.2f} is {direction} the {lower:.2f} .. {upper:.2f} "
                f"its last {len(history)} runs predict ({size:+.1f} robust sd)",
            )
        )
    return alerts


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def segment_alerts(
    session: Session, *, tenant_id: int, z: float, min_history: int
) -> list[AlertRecord]:
    """Alerts for the segments of the tenant's newest succeeded run."""
    rows = session.execute(_SERIES, {"tenant": tenant_id, "runs": RUNS_LOOKED_AT}).all()
    if not rows:
        return []
    newest = rows[-1].run_id
    sizes: dict[str, list[tuple[int, float | None]]] = {}
    values: dict[str, list[tuple[int, float | None]]] = {}
    for row in rows:
        sizes.setdefault(row.key, []).append((row.run_id, row.size))
        values.setdefault(row.key, []).append((row.run_id, _number(row.value)))
    current = {key for key, points in sizes.items() if points[-1][0] == newest}
    alerts = []
    for metric, series in (("size", sizes), ("value", values)):
        judged = {key: points for key, points in series.items() if key in current}
        alerts += judge(judged, metric=metric, z=z, min_history=min_history)
    return alerts
