"""Churn and purchase propensity, backtested: ``python -m bench.predictions``.

The demo shop (`segmenta.demo.generate`, ``--customers`` customers, default 3,000, seed 7)
is streamed through the real ingest API into a scratch database. Then, for each model
(churn, purchase propensity) and each of ``--repeats`` seeds, the real run
(`services.segment.predictions.pipeline.train_prediction` on a pending run, in this
process, one thread) is asked for ``as_of`` = the generator's ``now`` - ``--horizon``
days: it trains on labels observed up to ``as_of`` and scores every customer as of it;
the run then measures those scores against what the customers really did in the horizon
after ``as_of`` (the backtest) beside two baselines on the same customers: recency alone,
and BG/NBD expected purchases (fitted at the same cut-off). The old churn score,
1 - P(alive) of the same BG/NBD, is measured too. Medians over the repeats are written
to the "Churn and purchase propensity" section of ``bench/RESULTS.md``. Targets: the
churn model's AUC above both baselines, its expected calibration error ≤ 0.03.

Public transaction data inside a PyPI package was looked for and not found (the packages
that ship transactions ship CDNOW, kept out of this benchmark, or simulated data), so
only the demo shop is measured.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta
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
from tests.support.http import tenant_of

HERE = Path(__file__).resolve().parent
MODELS: tuple[Model, ...] = ("churn", "purchase_propensity")
ECE_TARGET = 0.03


def backtest(
    engine: Engine, tenant_id: int, model: Model, seed: int, horizon: int
) -> dict[str, Any]:
    """One run's figures: its backtest, its validation split and its times."""
    settings = SegmentSettings(prediction_horizon_days=horizon, segment_threads=1)
    as_of = DEFAULT_NOW - timedelta(days=horizon)
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


def old_churn(engine: Engine, tenant_id: int, horizon: int) -> dict[str, float]:
    """1 - P(alive), the churn score this model replaced, on the same backtest."""
    as_of = DEFAULT_NOW - timedelta(days=horizon)
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
    score = 1 - cut.column("bgnbd_p_alive")
    y = outcome.label("churn")
    one_time = cut.column("purchase_days") == 1
    return {
        **metrics.ranking(y, score),
        **metrics.calibration(y, score),
        "one_time_share": float(one_time.mean()),
        "one_time_mean_score": float(score[one_time].mean()) if one_time.any() else 0.0,
        "one_time_churn_rate": float(y[one_time].mean()) if one_time.any() else 0.0,
    }


def median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(float(row[key]) for row in rows))


def report(
    results: dict[str, list[dict[str, Any]]],
    old: dict[str, float],
    *,
    customers: int,
    horizon: int,
    repeats: int,
    load_s: float,
    wall_s: float,
) -> str:
    as_of = (DEFAULT_NOW - timedelta(days=horizon)).date()
    lines = [
        "## Churn and purchase propensity (`python -m bench.predictions`)",
        "",
        f"Demo shop of {customers:,} customers (seed 7) loaded through the ingest API in "
        f"{load_s:.0f} s. Backtest: each run asked for `as_of` = {as_of} (the generator's "
        f"now - {horizon} d), trained on features as of {horizon} d before that with labels "
        f"up to `as_of`, scored as of `as_of`, and measured against what the customers did "
        f"in the {horizon} d after it. Medians of {repeats} runs (seeds 1..{repeats}); the "
        "baselines are measured on the same customers and outcome in the same run.",
        "",
        "| model | AUC | recency only | BG/NBD expected purchases | ratio to best baseline "
        "| PR-AUC | PR-AUC recency | PR-AUC BG/NBD | ECE | Brier | base rate | calibration |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, rows in results.items():
        auc = median(rows, "backtest_auc")
        recency = median(rows, "recency_only_auc")
        bgnbd = median(rows, "bgnbd_expected_purchases_auc")
        chosen = sorted({row["calibration"] for row in rows})
        lines.append(
            f"| {model} | {auc:.3f} | {recency:.3f} | {bgnbd:.3f} | "
            f"{auc / max(recency, bgnbd):.3f} | {median(rows, 'backtest_pr_auc'):.3f} | "
            f"{median(rows, 'recency_only_pr_auc'):.3f} | "
            f"{median(rows, 'bgnbd_expected_purchases_pr_auc'):.3f} | "
            f"{median(rows, 'backtest_ece'):.4f} | {median(rows, 'backtest_brier'):.4f} | "
            f"{median(rows, 'backtest_base_rate'):.3f} | {', '.join(chosen)} |"
        )
    churn = results["churn"]
    ece = median(churn, "backtest_ece")
    beats = median(churn, "backtest_auc") > max(
        median(churn, "recency_only_auc"), median(churn, "bgnbd_expected_purchases_auc")
    )
    lines += [
        "",
        f"* Churn AUC above both baselines: **{'PASS' if beats else 'FAIL'}**; "
        f"ECE {ece:.4f} ≤ {ECE_TARGET}: **{'PASS' if ece <= ECE_TARGET else 'FAIL'}**.",
        f"* The old churn score, 1 - P(alive), on the same backtest: AUC {old['auc']:.3f}, "
        f"ECE {old['ece']:.3f}, Brier {old['brier']:.3f}. One-time buyers are "
        f"{old['one_time_share']:.0%} of the buyers; it gave them a mean churn of "
        f"{old['one_time_mean_score']:.3f} while {old['one_time_churn_rate']:.0%} of them "
        "did churn.",
        "",
        "| model | customers trained on | scored | validation AUC | run s | fit s "
        "| reasons s | reasons ms per 1,000 customers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, rows in results.items():
        reasons = median(rows, "reasons_s")
        scored = median(rows, "scored")
        lines.append(
            f"| {model} | {median(rows, 'trained_on'):,.0f} | {scored:,.0f} | "
            f"{median(rows, 'validation_auc'):.3f} | {median(rows, 'run_s'):.2f} | "
            f"{median(rows, 'fit_s'):.2f} | {reasons:.2f} | {1000 * 1000 * reasons / scored:.1f} |"
        )
    lines += [
        "",
        "* Reasons are occlusion pushes (each feature set to the training median, one at a "
        "time): features + 1 predictions per customer, the cost in the last column.",
        "* Real transaction data from a PyPI package: none found. `lifetimes` and `btyd` ship "
        "only CDNOW (kept out) and simulated transactions; `pymc-marketing`, "
        "`openretailscience` and `clvkit` ship no transaction data in their wheels.",
        f"* Wall time {wall_s:.0f} s; one thread per fit; machine shared with other work.",
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
        tenant_id = tenant_of(engine, key)
        log(f"loading a {args.customers:,}-customer demo shop through the API")
        _, load_s = load_shop(api, key, engine, args.customers, tmp / "shop", log)
        results: dict[str, list[dict[str, Any]]] = {model: [] for model in MODELS}
        for model in MODELS:
            for seed in range(1, args.repeats + 1):
                found = backtest(engine, tenant_id, model, seed, args.horizon)
                log(
                    f"  {model} seed {seed}: AUC {found['backtest_auc']} (recency "
                    f"{found['recency_only_auc']}, BG/NBD {found['bgnbd_expected_purchases_auc']})"
                    f", ECE {found['backtest_ece']}, {found['calibration']}"
                )
                results[model].append(found)
        old = old_churn(engine, tenant_id, args.horizon)
    markdown = report(
        results,
        old,
        customers=args.customers,
        horizon=args.horizon,
        repeats=args.repeats,
        load_s=load_s,
        wall_s=time.perf_counter() - started,
    )
    write_section(args.out, "predictions", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
