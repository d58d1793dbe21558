"""CLV models: validated against the published CDNOW fits, then behaviour and input checks."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.special import hyp2f1  # type: ignore[import-untyped]
from sklearn.exceptions import NotFittedError  # type: ignore[import-untyped]

from services.segment.clv import (
    BGNBD,
    CustomerSummary,
    GammaGamma,
    customer_lifetime_value,
    holdout_error,
    summarize_transactions,
)
from services.segment.clv.cli import fit_from_csv

pytestmark = pytest.mark.unit

CALIBRATION_END = date(1997, 9, 30)  # end of week 39
OBSERVATION_END = date(1998, 6, 30)  # end of week 78
# Fader, Hardie & Lee (2005): BG/NBD in "Counting your customers the easy way", Gamma-Gamma
# in "RFM and CLV: using iso-value curves for customer base analysis".
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}

Transactions = tuple[list[str], list[date], list[float]]


def read_cdnow() -> Transactions:
    """The CDNOW sample: customer id, id within the sample, date yyyymmdd, CDs, dollars
    (where it comes from: data/README.md)."""
    text = (Path(__file__).parent / "data" / "CDNOW_sample.txt").read_text()
    rows = [line.split() for line in text.splitlines() if line.strip()]
    days = [date.fromisoformat(row[2]) for row in rows]
    return [row[0] for row in rows], days, [float(row[4]) for row in rows]


@pytest.fixture(scope="module")
def cdnow() -> CustomerSummary:
    ids, days, amounts = read_cdnow()
    return summarize_transactions(
        ids, days, amounts, calibration_end=CALIBRATION_END, observation_end=OBSERVATION_END
    )


@pytest.fixture(scope="module")
def bgnbd(cdnow: CustomerSummary) -> BGNBD:
    return BGNBD().fit(cdnow.frequency, cdnow.recency, cdnow.T)


@pytest.fixture(scope="module")
def gamma_gamma(cdnow: CustomerSummary) -> GammaGamma:
    return GammaGamma().fit(cdnow.frequency, cdnow.monetary_value)


def relative_differences(fitted: dict[str, float], published: dict[str, float]) -> dict[str, float]:
    return {name: fitted[name] / value - 1 for name, value in published.items()}


def test_cdnow_summary_has_the_papers_customers(cdnow: CustomerSummary) -> None:
    assert len(cdnow) == 2357
    assert np.count_nonzero(cdnow.frequency) == 946
    assert cdnow.T.max() == pytest.approx(38.86, abs=0.01)
    assert cdnow.holdout_duration == 39


def test_bgnbd_matches_published_cdnow_estimates(bgnbd: BGNBD) -> None:
    differences = relative_differences(asdict(bgnbd.params_), PUBLISHED_BGNBD)
    assert bgnbd.converged_
    assert all(abs(d) < 0.01 for d in differences.values()), differences


def test_gamma_gamma_matches_published_cdnow_estimates(gamma_gamma: GammaGamma) -> None:
    differences = relative_differences(asdict(gamma_gamma.params_), PUBLISHED_GAMMA_GAMMA)
    assert gamma_gamma.n_customers_ == 946
    assert all(abs(d) < 0.02 for d in differences.values()), differences


def test_bgnbd_predicts_the_cdnow_holdout(bgnbd: BGNBD, cdnow: CustomerSummary) -> None:
    error = holdout_error(bgnbd, cdnow)
    assert cdnow.holdout_frequency is not None
    naive = cdnow.frequency / np.maximum(cdnow.T, 1e-9) * error.duration  # calibration rate
    naive_mae = float(np.mean(np.abs(naive - cdnow.holdout_frequency)))
    # The conditional expectations under-predict CDNOW's weeks 40-78 (1,653 against 1,882
    # repeat purchases): customers came back more than in the calibration weeks.
    assert error.actual == 1882
    assert error.relative_error is not None
    assert abs(error.relative_error) < 0.15, error
    assert error.mean_absolute_error < naive_mae, (error, naive_mae)


def test_bgnbd_tracks_cumulative_cdnow_repeat_purchases(
    bgnbd: BGNBD, cdnow: CustomerSummary
) -> None:
    """The paper's tracking check: expected repeat purchases of the cohort by week 78."""
    assert cdnow.holdout_frequency is not None
    new = np.zeros(1)
    expected = sum(bgnbd.expected_purchases(t + 39.0, new, new, new)[0] for t in cdnow.T)
    actual = cdnow.frequency.sum() + cdnow.holdout_frequency.sum()
    assert actual == 4339
    assert abs(expected / actual - 1) < 0.05


def test_expected_purchases_match_the_papers_formula(bgnbd: BGNBD) -> None:
    r, alpha, a, b = asdict(bgnbd.params_).values()
    x, t_x, t_cal, t = np.array([0.0, 1, 5, 20]), np.array([0.0, 10, 30, 37]), 38.0, 39.0
    z = t / (alpha + t_cal + t)
    textbook = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - (1 - z) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
    )
    textbook /= 1 + (x > 0) * a / (b + x - 1) * ((alpha + t_cal) / (alpha + t_x)) ** (r + x)
    expected = bgnbd.expected_purchases(t, x, t_x, np.full(4, t_cal))
    assert expected == pytest.approx(textbook, rel=1e-9)


def test_heavy_buyers_do_not_overflow(bgnbd: BGNBD) -> None:
    """The textbook form's hypergeometric term overflows for thousands of purchases."""
    expected = bgnbd.expected_purchases(52.0, [5000, 20000], [39.0, 39.0], [39.0, 39.0])
    assert np.all(np.isfinite(expected))
    assert np.all(expected > 1000)


def test_recent_buyers_are_more_likely_alive_and_buy_more(bgnbd: BGNBD) -> None:
    frequency, recency, t_cal = [10, 10, 1], [38.0, 5.0, 5.0], [39.0, 39.0, 39.0]
    alive = bgnbd.probability_alive(frequency, recency, t_cal)
    expected = bgnbd.expected_purchases(10.0, frequency, recency, t_cal)
    assert alive[0] > 0.9 > alive[2] > alive[1]
    assert expected[0] > expected[2] > expected[1]
    assert bgnbd.probability_alive(0, 0, 30) == pytest.approx([1.0])


def test_expected_purchases_grow_with_time(bgnbd: BGNBD) -> None:
    counts = [bgnbd.expected_purchases(t, 3, 20, 30)[0] for t in (0.0, 4.0, 52.0, 520.0)]
    assert counts[0] == 0
    assert counts == sorted(counts)


def test_expected_spend_moves_from_population_to_own_mean(gamma_gamma: GammaGamma) -> None:
    p, q, gamma = asdict(gamma_gamma.params_).values()
    spend = gamma_gamma.expected_average_spend([0, 1, 100], [0.0, 100.0, 100.0])
    assert spend[0] == pytest.approx(p * gamma / (q - 1))
    assert spend[0] < spend[1] < spend[2] < 100


def test_clv_grows_with_horizon_and_falls_with_discount_rate(
    bgnbd: BGNBD, gamma_gamma: GammaGamma, cdnow: CustomerSummary
) -> None:
    def clv(horizon: float, rate: float) -> Any:
        return customer_lifetime_value(
            bgnbd, gamma_gamma, cdnow, horizon=horizon, discount_rate=rate
        )

    year = clv(52, 0.1)
    assert np.all(clv(26, 0.1) < year)
    assert np.all(year < clv(104, 0.1))
    assert np.all(clv(52, 0.3) < year)
    assert np.all(year < clv(52, 0.0))
    undiscounted = bgnbd.expected_purchases(52.0, cdnow.frequency, cdnow.recency, cdnow.T)
    spend = gamma_gamma.expected_average_spend(cdnow.frequency, cdnow.monetary_value)
    assert clv(52, 0.0) == pytest.approx(undiscounted * spend)


def test_unfitted_models_refuse_to_predict(cdnow: CustomerSummary) -> None:
    with pytest.raises(NotFittedError):
        BGNBD().probability_alive(1, 2, 3)
    with pytest.raises(NotFittedError):
        BGNBD().expected_purchases(10, 1, 2, 3)
    with pytest.raises(NotFittedError):
        GammaGamma().expected_average_spend(1, 20.0)
    with pytest.raises(NotFittedError):
        customer_lifetime_value(BGNBD(), GammaGamma(), cdnow, horizon=52, discount_rate=0.1)


def test_estimators_follow_the_scikit_learn_contract(cdnow: CustomerSummary) -> None:
    model = BGNBD(penalizer=0.01)
    assert model.get_params() == {"penalizer": 0.01, "max_iter": 10_000}
    assert not hasattr(model, "params_")
    assert model.fit(cdnow.frequency, cdnow.recency, cdnow.T) is model
    assert model.n_customers_ == 2357


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([-1, 2], [0, 3], [5, 5], "frequency must be a non-negative whole number"),
        ([1.5, 2], [3, 3], [5, 5], "frequency must be a non-negative whole number"),
        ([1, 2], [6, 3], [5, 5], "recency cannot exceed T"),
        ([0, 2], [1, 3], [5, 5], "recency must be 0 for customers without repeat"),
        ([1, 2], [-1, 3], [5, 5], "recency must be non-negative"),
        ([1, 2], [1, 3], [5], "same length"),
        ([1, np.nan], [1, 3], [5, 5], "frequency must be finite"),
    ],
)
def test_bgnbd_rejects_impossible_histories(
    frequency: list[float],
    recency: list[float],
    T: list[float],  # noqa: N803
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        BGNBD().fit(frequency, recency, T)


def test_gamma_gamma_rejects_unusable_spend() -> None:
    with pytest.raises(ValueError, match="monetary_value must be positive"):
        GammaGamma().fit([1, 2, 3], [10.0, 0.0, 5.0])
    with pytest.raises(ValueError, match="at least two customers with repeat purchases"):
        GammaGamma().fit([0, 0, 3], [0.0, 0.0, 5.0])


def test_summary_merges_same_day_purchases() -> None:
    ids = ["a", "a", "a", "a", "b", "b", "c", "a"]
    days = ["2026-01-01", "2026-01-01T18:30", "2026-01-08", "2026-01-15T09:00", "2026-01-05"]
    days += ["2026-01-05", "2026-02-01", "2026-02-03"]
    amounts = [10.0, 5.0, 20.0, 40.0, 7.0, 3.0, 99.0, 1.0]
    summary = summarize_transactions(
        ids, days, amounts, calibration_end=date(2026, 1, 29), observation_end=date(2026, 2, 5)
    )
    assert summary.customer_ids.tolist() == ["a", "b"]  # c's first purchase is too late
    assert summary.frequency.tolist() == [2, 0]
    assert summary.recency.tolist() == [2, 0]
    assert summary.T.tolist() == pytest.approx([4, 24 / 7])
    assert summary.monetary_value.tolist() == [30, 0]
    assert summary.holdout_frequency is not None
    assert summary.holdout_frequency.tolist() == [1, 0]
    in_days = summarize_transactions(
        ids, days, amounts, calibration_end=date(2026, 1, 29), unit="D"
    )
    assert in_days.recency.tolist() == [14, 0]
    assert in_days.holdout_frequency is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"unit": "M"}, "unit must be one of"),
        ({"observation_end": date(2026, 1, 1)}, "observation_end must come after"),
        ({"amounts": [1.0]}, "same length"),
        ({"amounts": [1.0, np.inf]}, "amounts must be finite"),
        ({"purchased_at": ["2026-01-01", "someday"]}, "purchased_at must hold dates"),
    ],
)
def test_summary_rejects_bad_transactions(changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "customer_ids": ["a", "a"],
        "purchased_at": ["2026-01-01", "2026-01-03"],
        "amounts": [1.0, 2.0],
        "calibration_end": date(2026, 1, 10),
    }
    with pytest.raises(ValueError, match=message):
        summarize_transactions(**(arguments | changes))


def write_csv(path: Path, transactions: Transactions, date_formats: list[str]) -> Path:
    lines = ["customer_id,date,amount"]
    for row, (customer, day, amount) in enumerate(zip(*transactions, strict=True)):
        lines.append(f"{customer},{day.strftime(date_formats[row % len(date_formats)])},{amount}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_from_csv_reports_both_models_on_cdnow(tmp_path: Path) -> None:
    formats = ["%Y-%m-%d", "%Y%m%d", "%Y-%m-%dT12:00:00Z", "%Y-%m-%d 08:15:00+01:00"]
    path = write_csv(tmp_path / "cdnow.csv", read_cdnow(), formats)
    report = fit_from_csv(path, calibration_end=CALIBRATION_END, observation_end=OBSERVATION_END)
    assert json.loads(json.dumps(report)) == report
    assert (report["customers"], report["repeat_customers"]) == (2357, 946)
    bgnbd_differences = relative_differences(report["bgnbd"]["params"], PUBLISHED_BGNBD)
    assert all(abs(d) < 0.01 for d in bgnbd_differences.values())
    assert report["gamma_gamma"]["params"]["p"] == pytest.approx(6.25, rel=0.02)
    assert report["holdout"]["actual"] == 1882
    assert report["clv"]["horizon"] == pytest.approx(52.18, abs=0.01)
    assert 0 < report["clv"]["mean"] < report["clv"]["total"]


def test_fit_from_csv_in_days_rescales_only_alpha(tmp_path: Path, bgnbd: BGNBD) -> None:
    path = write_csv(tmp_path / "cdnow.csv", read_cdnow(), ["%Y-%m-%d"])
    report = fit_from_csv(path, calibration_end=CALIBRATION_END, unit="D", horizon=90)
    assert "holdout" not in report
    assert report["observation_end"] is None
    assert report["clv"]["horizon"] == 90
    weekly, daily = asdict(bgnbd.params_), report["bgnbd"]["params"]
    assert daily == pytest.approx(weekly | {"alpha": 7 * weekly["alpha"]}, rel=1e-3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customer,date,amount\na,2026-01-01,1\n", "header lacks customer_id"),
        ("customer_id,date,amount\na,2026-01-01,1\na,yesterday,2\n", "line 3"),
        ("customer_id,date,amount\na,2026-01-01,lots\n", "line 2"),
    ],
)
def test_fit_from_csv_names_the_bad_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        fit_from_csv(path, calibration_end=date(2026, 6, 1))
