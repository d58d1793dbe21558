"""Fit both CLV models on a transactions CSV and report them as a JSON-able dict."""

from __future__ import annotations

import csv
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from services.segment.clv.data import CustomerSummary, summarize_transactions
from services.segment.clv.models import BGNBD, GammaGamma
from services.segment.clv.value import customer_lifetime_value, holdout_error

COLUMNS = ("customer_id", "date", "amount")


def fit_from_csv(
    path: Path,
    *,
    calibration_end: date,
    observation_end: date | None = None,
    unit: str = "W",
    horizon: float | None = None,
    discount_rate: float = 0.10,
) -> dict[str, Any]:
    """Fit BG/NBD and Gamma-Gamma on ``path`` (header ``customer_id,date,amount``).

    Purchases up to ``calibration_end`` fit the models; with ``observation_end`` the
    purchases after it, up to ``observation_end``, are predicted and the error reported.
    ``horizon`` (in ``unit``; one year by default) and the annual ``discount_rate`` set the
    customer lifetime value figures.
    """
    ids, days, amounts = read_transactions(path)
    summary = summarize_transactions(
        ids,
        days,
        amounts,
        calibration_end=calibration_end,
        observation_end=observation_end,
        unit=unit,
    )
    if len(summary) == 0:
        raise ValueError(f"no customer in {path} made a first purchase by {calibration_end}")
    transactions = BGNBD().fit(summary.frequency, summary.recency, summary.T)
    spend = GammaGamma().fit(summary.frequency, summary.monetary_value)
    horizon = summary.periods_per_year if horizon is None else horizon
    value = customer_lifetime_value(
        transactions, spend, summary, horizon=horizon, discount_rate=discount_rate
    )
    report: dict[str, Any] = {
        "transactions": len(ids),
        **_describe(summary),
        "bgnbd": _describe_model(transactions),
        "gamma_gamma": _describe_model(spend),
        "clv": {
            "horizon": horizon,
            "discount_rate": discount_rate,
            "mean": float(value.mean()),
            "median": float(np.median(value)),
            "total": float(value.sum()),
        },
    }
    if observation_end is not None:
        report["holdout"] = asdict(holdout_error(transactions, summary))
    return report


def read_transactions(path: Path) -> tuple[list[str], list[date], list[float]]:
    """Read ``customer_id,date,amount`` rows; dates are ISO dates (``1997-01-01`` or
    ``19970101``) or ISO datetimes, which count on their UTC day."""
    ids: list[str] = []
    days: list[date] = []
    amounts: list[float] = []
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: the header lacks {', '.join(sorted(missing))}")
        for row in reader:
            try:
                days.append(_parse_day(row["date"]))
                amounts.append(float(row["amount"]))
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path}, line {reader.line_num}: {error}") from error
            ids.append(row["customer_id"])
    return ids, days, amounts


def _parse_day(text: str) -> date:
    text = text.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()


def _describe(summary: CustomerSummary) -> dict[str, Any]:
    observation_end = summary.observation_end
    return {
        "unit": summary.unit,
        "calibration_end": summary.calibration_end.isoformat(),
        "observation_end": None if observation_end is None else observation_end.isoformat(),
        "customers": len(summary),
        "repeat_customers": int(np.count_nonzero(summary.frequency)),
    }


def _describe_model(model: BGNBD | GammaGamma) -> dict[str, Any]:
    return {
        "params": asdict(model.params_),
        "log_likelihood": model.log_likelihood_,
        "customers": model.n_customers_,
        "converged": model.converged_,
    }
