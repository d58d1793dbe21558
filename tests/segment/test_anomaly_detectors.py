"""Each anomaly detector on constructed histories: it fires on the planted change and
stays quiet on a steady customer (and on a new one, who has no history to depart from)."""

from __future__ import annotations

import numpy as np
import pytest

from services.segment.anomalies import detectors as d
from services.segment.anomalies.population import population_scores
from services.segment.anomalies.segments import judge

pytestmark = pytest.mark.unit
NAN = np.nan


def windows(*rows: tuple[float, list[float]]) -> d.Windows:
    return d.Windows(
        recent=np.array([recent for recent, _ in rows], dtype=np.float64),
        history=np.array([history for _, history in rows], dtype=np.float64),
    )


def flagged(flags: d.Flags) -> list[int]:
    return sorted(int(row) for row in flags.rows)


def test_spend_spike_fires_on_a_jump_not_on_a_steady_or_occasional_buyer() -> None:
    spend = windows(
        (120.0, [100, 130, 90, 110, 120, 95]),  # steady
        (2400.0, [100, 130, 90, 110, 120, 95]),  # the spike
        (260.0, [0, 0, 250, 0, 0, 240]),  # an occasional buyer's usual order
        (5000.0, [NAN, NAN, NAN, NAN, NAN, 40]),  # too new to judge
    )
    flags = d.robust_spike(
        spend, threshold=4, min_value=200, min_history=3, relative_floor=1.0, absolute_floor=50
    )
    assert flagged(flags) == [1]
    assert flags.size[0] > 10
    assert flags.expected[0] == pytest.approx(105.0)


def test_one_odd_month_in_the_history_does_not_hide_a_spike() -> None:
    # A mean and sd would be dragged up by the 3000; the median and MAD are not.
    spend = windows((1500.0, [100, 110, 3000, 95, 105, 100]))
    flags = d.robust_spike(spend, threshold=4, min_value=200, min_history=3, relative_floor=0.0)
    assert flagged(flags) == [0]


def test_refund_burst_against_the_customers_own_rate() -> None:
    refunds = windows(
        (0.0, [0, 1, 0, 0, 0, 0]),  # quiet
        (5.0, [0, 0, 0, 1, 0, 0]),  # the burst
        (5.0, [4, 6, 5, 5, 4, 6]),  # always refunds this much: their normal
        (2.0, [0, 0, 0, 0, 0, 0]),  # two is not yet a burst
    )
    flags = d.count_burst(refunds, alpha=0.001, min_count=3, min_history=3)
    assert flagged(flags) == [1]
    assert flags.observed[0] == 5


def test_support_surge_needs_enough_history() -> None:
    contacts = windows((6.0, [NAN, NAN, NAN, NAN, 0, 0]), (6.0, [0, 0, 0, 0, 0, 0]))
    flags = d.count_burst(contacts, alpha=0.001, min_count=3, min_history=3)
    assert flagged(flags) == [1]


def test_spend_collapse_of_a_frequent_buyer_only() -> None:
    orders = windows(
        (0.0, [0, 4, 5, 4, 6, 5]),  # stopped: two empty windows after ~5 a window
        (3.0, [3, 4, 5, 4, 6, 5]),  # steady
        (0.0, [0, 1, 0, 1, 1, 0]),  # a slow buyer's quiet spell is no news
    )
    spend = windows(
        (0.0, [0, 400, 500, 400, 600, 500]),
        (300.0, [300, 400, 500, 400, 600, 500]),
        (0.0, [0, 80, 0, 90, 70, 0]),
    )
    flags = d.count_collapse(orders, spend, alpha=0.01, min_expected=3, min_history=3, span=2)
    assert flagged(flags) == [0]
    assert flags.expected[0] > 500


def test_sentiment_turning_negative() -> None:
    flags = d.sentiment_drop(
        recent_score=np.array([-0.6, 0.5, -0.5, -0.7]),
        recent_count=np.array([3, 3, 3, 1]),
        history_score=np.array([0.7, 0.6, -0.4, 0.8]),
        history_count=np.array([2, 4, 3, 2]),
        negative=-0.2,
        min_drop=0.6,
        min_recent=2,
        min_history=1,
    )
    # 1 stays happy, 2 was always unhappy, 3 wrote one text only.
    assert flagged(flags) == [0]
    assert flags.size[0] == pytest.approx(1.3)


def test_bot_burst_of_events_within_an_hour() -> None:
    peaks = windows(
        (6.0, [5, 4, 7, 6, 5, 6]),
        (180.0, [5, 4, 7, 6, 5, 6]),
        (180.0, [NAN, NAN, NAN, NAN, NAN, NAN]),  # a new account, straight to a burst
        (70.0, [60, 75, 80, 65, 70, 72]),  # a heavy but steady user
    )
    flags = d.robust_spike(peaks, threshold=4, min_value=60, min_history=0, absolute_floor=2)
    assert flagged(flags) == [1, 2]


def test_population_outlier_ranks_the_odd_vector_first() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(300, 5))
    values[17] = [9, -9, 9, -9, 9]
    scores, ranks = population_scores(values, seed=7)
    assert int(np.argmax(scores)) == 17
    assert ranks[17] == 1.0
    assert ranks.min() >= 0
    assert ranks.max() <= 1


def test_segment_alert_on_a_jump_not_on_a_steady_trend() -> None:
    series = {
        "growing": [(1, 100.0), (2, 110.0), (3, 120.0), (4, 130.0), (5, 140.0)],
        "jumped": [(1, 100.0), (2, 102.0), (3, 99.0), (4, 101.0), (5, 180.0)],
        "short": [(4, 100.0), (5, 400.0)],
    }
    alerts = judge(series, metric="size", z=3, min_history=3)
    assert [(a.segment_key, a.segmentation_run_id) for a in alerts] == [("jumped", 5)]
    assert alerts[0].upper < 180
    assert alerts[0].size > 3
