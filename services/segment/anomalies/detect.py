"""Every detector over one tenant's behaviour: the flags, each with a reason in words.

The reasons name figures only (counts, amounts, scores), never who the customer is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.segment.anomalies import detectors as d
from services.segment.anomalies.data import Behaviour
from services.segment.anomalies.detectors import AnomalyKind, Flags
from services.segment.anomalies.params import AnomalyParams


@dataclass(frozen=True)
class FlagRecord:
    customer_pk: int
    kind: AnomalyKind
    size: float
    observed: float | None
    expected: float | None
    reason: str


Reason = Callable[[float, float, float], str]


def _reason_texts(days: int) -> dict[AnomalyKind, Reason]:
    return {
        AnomalyKind.SPEND_SPIKE: lambda o, e, z: (
            f"spent {o:.2f} in the last {days} days against a usual {e:.2f} per {days} days "
            f"({z:.1f} robust sd above)"
        ),
        AnomalyKind.SPEND_COLLAPSE: lambda o, e, z: (
            f"spent {o:.2f} lately against a usual {e:.2f} over as long; the orders "
            f"expected from their rate did not come ({z:.1f} sd below)"
        ),
        AnomalyKind.REFUND_BURST: lambda o, e, z: (
            f"{o:.0f} refunds in the last {days} days against a usual {e:.2f} per {days} days"
        ),
        AnomalyKind.SUPPORT_SURGE: lambda o, e, z: (
            f"{o:.0f} support contacts in the last {days} days against a usual {e:.2f} "
            f"per {days} days"
        ),
        AnomalyKind.SENTIMENT_DROP: lambda o, e, z: (
            f"recent texts score {o:+.2f} (median) against {e:+.2f} before: sentiment "
            f"turned negative"
        ),
        AnomalyKind.BOT_BURST: lambda o, e, z: (
            f"{o:.0f} events within one hour in the last {days} days against a usual "
            f"peak of {e:.0f} ({z:.1f} robust sd above): bot-like"
        ),
    }


def detect_customers(behaviour: Behaviour, params: AnomalyParams) -> list[FlagRecord]:
    """Every flag of the behavioural detectors, strongest first within each kind."""
    w = behaviour.windows
    s = behaviour.sentiment
    found: dict[AnomalyKind, Flags] = {
        AnomalyKind.SPEND_SPIKE: d.robust_spike(
            w["spend"],
            threshold=params.z_threshold,
            min_value=params.min_spike_spend,
            min_history=params.min_history_windows,
            relative_floor=1.5,
            absolute_floor=params.min_spike_spend / 4,
            min_active=3,
        ),
        AnomalyKind.SPEND_COLLAPSE: d.count_collapse(
            w["orders"],
            w["spend"],
            alpha=params.collapse_alpha,
            min_expected=params.min_collapse_orders,
            min_history=params.min_history_windows,
            span=params.collapse_windows,
        ),
        AnomalyKind.REFUND_BURST: d.count_burst(
            w["refunds"],
            alpha=params.alpha,
            min_count=params.min_burst_count,
            min_history=params.min_history_windows,
        ),
        AnomalyKind.SUPPORT_SURGE: d.count_burst(
            w["contacts"],
            alpha=params.alpha,
            min_count=params.min_burst_count,
            min_history=params.min_history_windows,
        ),
        AnomalyKind.SENTIMENT_DROP: d.sentiment_drop(
            s["sentiment_recent"],
            s["sentiment_recent_n"],
            s["sentiment_history"],
            s["sentiment_history_n"],
            negative=params.negative_score,
            min_drop=params.min_sentiment_drop,
            min_recent=params.min_recent_texts,
            min_history=1,
        ),
        AnomalyKind.BOT_BURST: d.robust_spike(
            w["burst"],
            threshold=params.z_threshold,
            min_value=params.min_bot_events_per_hour,
            min_history=0,
            absolute_floor=2.0,
        ),
    }
    texts = _reason_texts(params.window_days)
    records = []
    for kind, flags in found.items():
        for row in np.argsort(-flags.size, kind="stable"):
            observed, expected = float(flags.observed[row]), float(flags.expected[row])
            size = float(flags.size[row])
            records.append(
                FlagRecord(
                    customer_pk=int(behaviour.customer_pks[flags.rows[row]]),
                    kind=kind,
                    size=round(size, 4),
                    observed=round(observed, 4),
                    expected=round(expected, 4),
                    reason=texts[kind](observed, expected, size),
                )
            )
    return records


def population_flags(
    pks: NDArray[np.int64], scores: NDArray[np.float64], ranks: NDArray[np.float64], share: float
) -> list[FlagRecord]:
    """The ``share`` of customers easiest to isolate from the rest."""
    count = int(np.floor(share * len(pks)))
    records = []
    for row in np.argsort(-scores, kind="stable")[:count]:
        records.append(
            FlagRecord(
                customer_pk=int(pks[row]),
                kind=AnomalyKind.POPULATION_OUTLIER,
                size=round(float(scores[row]), 4),
                observed=round(float(ranks[row]), 4),
                expected=None,
                reason=f"unlike the rest of the customers: isolation score {scores[row]:.3f}, "
                f"more unusual than {ranks[row]:.1%} of them",
            )
        )
    return records
