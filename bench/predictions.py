"""Churn and purchase propensity, backtested: ``python -m bench.predictions``.

Two shops in one scratch database: the demo shop (`segmenta.demo.generate`,
``--customers`` customers, default 3,000, seed 7), streamed through the real ingest API,
and a steady simulated shop of as many customers (`tests.segment.prediction_shop`: each
buys at their own rate until an exponential drop-out). For each scenario (demo at
``--horizon`` days, default 90, and at 14 days; steady at ``--horizon``), each model
(churn, purchase propensity) and each of ``--repeats`` seeds, the real run
(`services.segment.predictions.pipeline.train_prediction` on a pending run, in this
process, one thread) is asked for ``as_of`` = the end of the history - the horizon: it
trains on labels observed up to ``as_of`` and scores every customer as of it; the run
then measures those scores against what the customers really did in the horizon after
``as_of`` beside two baselines on the same customers: recency alone, and BG/NBD expected
purchases (fitted at the same cut-off). The old churn score, 1 - P(alive) of the same
BG/NBD, is measured too. Medians over the repeats are written to the "Churn and purchase
propensity" section of ``bench/RESULTS.md``. Targets: the churn model's AUC above both
baselines, its expected calibration error <= 0.03.

Public transaction data inside a PyPI package was looked for and not found (the packages
that ship transactions ship CDNOW, kept out of this benchmark, or simulated data), so
only these two shops are measured.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.results_file import write_section
from bench.segment import database, log, stack_env, work_dir
from bench.segment_quality import load_shop
from bench.segment_stack import ingest_key, running_stack
from segmenta.demo.generate import DEFAULT_NOW
from services.segment.predictions import metrics, runs
from services.segment.predictions.data import Model, load_cut_off, load_outcome
from services.segment.predictions.pipeline import train_prediction
from services.segment.predictions.runs import PredictionParams
from services.segment.settings import SegmentSettings
from shared.db import session_scope
from tests.segment.prediction_shop import build_history_shop
from tests.support.http import tenant_of

HERE = Path(__file__).resolve().parent
MODELS: tuple[Model, ...] = ("churn", "purchase_propensity")
ECE_TARGET = 0.03


@dataclass(frozen=True)
class Scenario:
    name: str
    tenant_id: int
    horizon: int
    now: datetime = DEFAULT_NOW  # where the shop's history ends

    @property
    def as_of(self) -> datetime:
        return self.now - timedelta(days=self.horizon)


def backtest(engine: Engine, scenario: Scenario, model: Model, seed: int) -> dict[str, Any]:
    """One run's figures: its backtest, its validation split and its times."""
    horizon, tenant_id = scenario.horizon, scenario.tenant_id
    settings = SegmentSettings(prediction_horizon_days=horizon, segment_threads=1)
    as_of = scenario.as_of
    with session_scope(engine) as session:
        params = PredictionParams.resolve(settings, model=model, as_of=as_of, seed=seed)
        run_id = runs.create_run(session, tenant_id=tenant_id, params=params, max_in_flight=9)
    started = time.perf_counter()
    train_prediction(engine, settings, run_id)
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT status, error, metrics, data_window FROM prediction_run WHERE id = :r"),
            {"r": run_id},
        ).one()
    if row.status != "succeeded":
        raise RuntimeError(f"{model} run {run_id} {row.status}: {row.error}")
    found = row.metrics
    return {
        "run_s": seconds,
        "fit_s": found["fit_seconds"],
        "reasons_s": found["reasons_seconds"],
        "trained_on": row.data_window["rows"],
        "scored": row.data_window["scored"],
        "validation_auc": found["auc"],
        "calibration": found["calibration"],
        "served": found["served"],
        "cut_offs": len(found["training_cut_offs"]),
        "split": found["split"],
        **{f"backtest_{k}": v for k, v in found["backtest"].items() if k != "baselines"},
        **{
            f"{name}_auc": figures["auc"]
            for name, figures in found["backtest"]["baselines"].items()
        },
        **{
            f"{name}_pr_auc": figures["pr_auc"]
            for name, figures in found["backtest"]["baselines"].items()
        },
    }


def old_churn(engine: Engine, scenario: Scenario) -> dict[str, float]:
    """1 - P(alive), the churn score this model replaced, on the same backtest."""
    as_of, horizon, tenant_id = scenario.as_of, scenario.horizon, scenario.tenant_id
    with session_scope(engine) as session:
        cut = load_cut_off(
            session,
            tenant_id=tenant_id,
            as_of=as_of,
            feature_set="v1",
            model="churn",
            horizon_days=horizon,
            seed=7,
        )
        outcome = load_outcome(session, tenant_id=tenant_id, cut_off=cut, horizon_days=horizon)
        train = load_cut_off(
            session,
            tenant_id=tenant_id,
            as_of=as_of - timedelta(days=horizon),
            feature_set="v1",
            model="churn",
            horizon_days=horizon,
            seed=7,
        )
        trained = load_outcome(session, tenant_id=tenant_id, cut_off=train, horizon_days=horizon)
    score = 1 - cut.column("bgnbd_p_alive")
    y = outcome.label("churn")
    one_time = cut.column("purchase_days") == 1
    return {
        **metrics.ranking(y, score),
        **metrics.calibration(y, score),
        "one_time_share": float(one_time.mean()),
        "one_time_mean_score": float(score[one_time].mean()) if one_time.any() else 0.0,
        "one_time_churn_rate": float(y[one_time].mean()) if one_time.any() else 0.0,
        "training_churn_rate": float(trained.label("churn").mean()),
        "backtest_churn_rate": float(y.mean()),
    }


def median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(float(row[key]) for row in rows))


def scenario_rows(
    scenario: Scenario, results: dict[str, list[dict[str, Any]]], old: dict[str, float]
) -> tuple[list[str], list[str]]:
    """The quality table's rows and the scenario's verdict lines."""
    rows = []
    for model, found in results.items():
        auc = median(found, "backtest_auc")
        recency = median(found, "recency_only_auc")
        bgnbd = median(found, "bgnbd_expected_purchases_auc")
        chosen = ", ".join(sorted({row["calibration"] for row in found}))
        served = ", ".join(sorted({row["served"] for row in found}))
        rows.append(
            f"| {scenario.name} | {scenario.horizon} | {model} | {auc:.3f} | {recency:.3f} | "
            f"{bgnbd:.3f} | {auc / max(recency, bgnbd):.3f} | "
            f"{median(found, 'backtest_pr_auc'):.3f} | {median(found, 'recency_only_pr_auc'):.3f}"
            f" | {median(found, 'bgnbd_expected_purchases_pr_auc'):.3f} | "
            f"{median(found, 'backtest_ece'):.4f} | {median(found, 'backtest_brier'):.4f} | "
            f"{median(found, 'backtest_base_rate'):.3f} | {chosen} | {served} |"
        )
    churn = results["churn"]
    ece = median(churn, "backtest_ece")
    beats = median(churn, "backtest_auc") > max(
        median(churn, "recency_only_auc"), median(churn, "bgnbd_expected_purchases_auc")
    )
    verdict = [
        f"* {scenario.name}, {scenario.horizon} d: churn AUC above both baselines "
        f"**{'PASS' if beats else 'FAIL'}**; ECE {ece:.4f} <= {ECE_TARGET} "
        f"**{'PASS' if ece <= ECE_TARGET else 'FAIL'}**. Churn rate in the training "
        f"window {old['training_churn_rate']:.0%}, in the backtest window "
        f"{old['backtest_churn_rate']:.0%}. Old churn 1 - P(alive): AUC {old['auc']:.3f}, "
        f"ECE {old['ece']:.3f}; it gave the {old['one_time_share']:.0%} one-time buyers a "
        f"mean churn of {old['one_time_mean_score']:.3f} while "
        f"{old['one_time_churn_rate']:.0%} of them churned.",
    ]
    return rows, verdict


def cost_rows(scenario: Scenario, results: dict[str, list[dict[str, Any]]]) -> list[str]:
    rows = []
    for model, found in results.items():
        reasons = median(found, "reasons_s")
        scored = median(found, "scored")
        rows.append(
            f"| {scenario.name} | {scenario.horizon} | {model} | "
            f"{median(found, 'cut_offs'):.0f} | {median(found, 'trained_on'):,.0f} | "
            f"{scored:,.0f} "
            f"| {median(found, 'validation_auc'):.3f} | {median(found, 'run_s'):.2f} | "
            f"{median(found, 'fit_s'):.2f} | {reasons:.2f} | "
            f"{1000 * 1000 * reasons / scored:.1f} |"
        )
    return rows


# The figures of the same backtests (same shops, seeds 1..3) before stacked cut-offs and
# the baseline guard: one training cut-off, a random 60 / 20 / 20 split, the trees always
# served. (AUC, ECE) by (shop, horizon, model).
BEFORE: dict[tuple[str, int, str], tuple[float, float]] = {
    ("demo", 90, "churn"): (0.821, 0.6724),
    ("demo", 90, "purchase_propensity"): (0.643, 0.5483),
    ("demo", 14, "churn"): (0.654, 0.1585),
    ("demo", 14, "purchase_propensity"): (0.605, 0.1648),
    ("steady", 90, "churn"): (0.934, 0.0260),
    ("steady", 90, "purchase_propensity"): (0.937, 0.0244),
}


def before_after(
    measured: list[tuple[Scenario, dict[str, list[dict[str, Any]]], dict[str, float]]],
) -> list[str]:
    """One line: AUC and ECE before (one cut-off, no guard) -> now, per row."""
    parts = []
    for scenario, results, _ in measured:
        for model, found in results.items():
            old = BEFORE.get((scenario.name, scenario.horizon, model))
            if old is not None:
                parts.append(
                    f"{scenario.name} {scenario.horizon} d {model} AUC {old[0]:.3f} -> "
                    f"{median(found, 'backtest_auc'):.3f}, ECE {old[1]:.4f} -> "
                    f"{median(found, 'backtest_ece'):.4f}"
                )
    if not parts:
        return []
    return [
        "* Before (one training cut-off, no guard, the demo shop from the generator before "
        "its history was made steady in time) -> after: " + "; ".join(parts) + "."
    ]


def report(
    measured: list[tuple[Scenario, dict[str, list[dict[str, Any]]], dict[str, float]]],
    *,
    customers: int,
    repeats: int,
    load_s: float,
    wall_s: float,
) -> str:
    quality: list[str] = []
    verdicts: list[str] = []
    costs: list[str] = []
    for scenario, results, old in measured:
        rows, verdict = scenario_rows(scenario, results, old)
        quality += rows
        verdicts += verdict
        costs += cost_rows(scenario, results)
    lines = [
        "## Churn and purchase propensity (`python -m bench.predictions`)",
        "",
        "Backtests: each run is asked for `as_of` = the end of the shop's history - the "
        "horizon, trains on stacked cut-offs `as_of` - horizon - k x step (step = max("
        "horizon / 3, 14 d), k = 0..3 while there is history), each with features as of "
        "itself and labels observed in the horizon after it (never past `as_of`), holds out "
        "40 % of the latest cut-off's customers in two halves, chooses the calibration "
        "(none, isotonic, sigmoid) by its Brier score fitted on one half and scored on the "
        "other, both ways round, and serves it refitted on both; serves the best baseline, "
        "calibrated, where the trees rank the validation half worse than it, "
        "scores every customer as of `as_of`, and is measured against what the "
        f"customers did in the horizon after it. Medians of {repeats} runs (seeds "
        f"1..{repeats}); the baselines (recency alone, BG/NBD expected purchases fitted at "
        "the same cut-off) are measured on the same customers and outcome in the same run.",
        "",
        f"* demo: the demo shop (`segmenta.demo.generate`, {customers:,} customers, seed 7) "
        f"loaded through the ingest API ({load_s:.0f} s). Customers sign up all through "
        "its history and buy at their own rhythm from their first order on, the personas "
        "that still buy up to `now` (their latest order is wherever their rhythm put it, "
        "not drawn from a range before `now` as until 2026-12-06, which gave every one of "
        "them an order in the last window and so a lower churn rate there than in any "
        "earlier window); lapsers stopped 200-480 days before `now`.",
        f"* steady: {customers:,} simulated customers who buy at their own Poisson rate "
        "until an exponential drop-out (`tests/segment/prediction_shop.py`), a history "
        "whose churn rate does not drift with time. It is made by the very process BG/NBD "
        "assumes, in which recency and frequency carry all there is to know: there the "
        "model can at best tie the baselines, and its calibration is what it shows.",
        "",
        "| shop | horizon d | model | AUC | recency only | BG/NBD expected purchases "
        "| ratio to best baseline | PR-AUC | PR-AUC recency | PR-AUC BG/NBD | ECE | Brier "
        "| base rate | calibration | served |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *quality,
        "",
        *verdicts,
        "* Calibration is learnt from the latest labelled window's outcome: where the "
        "event's rate moves between it and the scored window, the ranking holds and the "
        "probabilities are off by the shift (the demo shop's 90-day churn rate moved from "
        "24 % to 19 % until its personas kept their rhythm up to `now`).",
        "* Steps of 2026-12-06, demo 90 d churn ECE (median of seeds 1-3, same bench): "
        "0.0468 with the old generator; 0.0298 with personas buying up to `now` (seeds "
        "0.0298, 0.0076, 0.0337: the calibration chosen on one held-out half of ~430 "
        "customers); 0.0206 with the calibration chosen on both halves in turn and "
        "refitted on both.",
        *before_after(measured),
        "",
        "| shop | horizon d | model | cut-offs | labelled rows, all cut-offs | scored "
        "| validation AUC "
        "| run s | fit s | reasons s | reasons ms per 1,000 customers |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *costs,
        "",
        "* Reasons are occlusion pushes (each feature set to the training median, one at a "
        "time): features + 1 predictions per customer; their cost is the last two columns.",
        "* Real transaction data from a PyPI package: none found. `lifetimes` and `btyd` ship "
        "only CDNOW (kept out) and simulated transactions; `pymc-marketing`, "
        "`openretailscience` and `clvkit` ship no transaction data in their wheels.",
        f"* Wall time {wall_s:.0f} s; one thread per fit; a machine shared with other work.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--logs", type=Path, help="keep data files and process logs here")
    args = parser.parse_args()
    started = time.perf_counter()
    with (
        work_dir(args.logs, "predictions") as tmp,
        database() as url,
        stack_env(tmp, url) as env,
        running_stack({**env, "SEGMENTA_NLP_BACKEND": "none"}, tmp, []) as (api, engine),
    ):
        key = ingest_key(engine, "predictions")
        log(f"loading a {args.customers:,}-customer demo shop through the API")
        _, load_s = load_shop(api, key, engine, args.customers, tmp / "shop", log)
        demo = tenant_of(engine, key)
        steady = build_history_shop(engine, customers=args.customers, seed=7, now=DEFAULT_NOW)
        scenarios = [
            Scenario("demo", demo, args.horizon),
            Scenario("demo", demo, 14),
            Scenario("steady", steady.tenant_id, args.horizon),
        ]
        measured = []
        for scenario in scenarios:
            results: dict[str, list[dict[str, Any]]] = {model: [] for model in MODELS}
            for model in MODELS:
                for seed in range(1, args.repeats + 1):
                    found = backtest(engine, scenario, model, seed)
                    log(
                        f"  {scenario.name} {scenario.horizon} d {model} seed {seed}: AUC "
                        f"{found['backtest_auc']} (recency {found['recency_only_auc']}, "
                        f"BG/NBD {found['bgnbd_expected_purchases_auc']}), ECE "
                        f"{found['backtest_ece']}, {found['calibration']}, served "
                        f"{found['served']} ({found['split']}, {found['cut_offs']} cut-offs)"
                    )
                    results[model].append(found)
            measured.append((scenario, results, old_churn(engine, scenario)))
    markdown = report(
        measured,
        customers=args.customers,
        repeats=args.repeats,
        load_s=load_s,
        wall_s=time.perf_counter() - started,
    )
    write_section(args.out, "predictions", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
