"""Segment service benchmarks: ``python -m bench.segment [--quick] [--only PART]``.

Three parts, each on its own scratch database (migrated to head, dropped afterwards) and,
where processes are needed, its own private Redis; results go to the ``segment`` section
of ``bench/RESULTS.md`` (one block per part) and a summary table is printed.

1. **quality**: the demo shop (`segmenta.demo.generate`, 5,000 customers, seed 7;
   ``--quick``: 1,500) is streamed through the real ingest API (`segmenta.client.upload`
   to a uvicorn process started as the tests start it); the nlp worker and the outbox
   relay analyse its reviews and transcripts (backend ``--nlp-backend``, default the
   shipped local model), so the sentiment features are real. v1 features are computed
   once (`compute_features`, as of the generator's ``now``) and loaded with
   `load_matrix`; every algorithm is fitted with ``k="auto"`` and with k = the number of
   personas, on the pipeline's modeling subset (`features.MODEL_FEATURES`), seed 7, other
   parameters at their defaults. Reported per fit: adjusted Rand index against
   ``truth.csv`` (noise counts as one more label), segments found, the model's
   silhouette, surrogate-tree fidelity of `explain`, and the wall time of `fit`.
   Target: the default algorithm (``SegmentSettings.segment_algorithm``) ARI ≥ 0.8.

2. **retrain**: a shop made in SQL with ``generate_series`` (`bench.segment_data`):
   100k customers / 1M orders, then 1M / 10M (2.5 lines per order, 5 events per
   customer, reviews, transcripts and their analyses; ``--quick``: 20k / 200k only).
   Each run is the real `pipeline.train_run` on a new pending run (``minibatch_kmeans``,
   k="auto", promoted always so activation runs), in a spawned child process with the
   worker's settings; the pipeline's calls are wrapped with timers for the stage
   breakdown (`bench.segment_retrain.STAGES`), the child's RSS is sampled every 0.2 s
   and the database backends' private memory (USS) every second. Right after each run,
   in the same process, scikit-learn's `MiniBatchKMeans` with the chosen k is fitted on
   the same rows, one thread: the raw baseline. Runs per size: ``--repeats`` at 100k
   (default 3), ``--big-repeats`` at 1M (default 1); ``--sizes`` picks the sizes. A run
   still going after ``--run-limit`` s (default 600) is stopped and reported with the
   stage it was in; when that stage is CLV scoring, one more run with CLV scoring
   skipped times every other stage. The CLV optimiser is wrapped as well, to report
   its likelihood evaluations. Targets: total ≤ 3 min, peak RSS ≤ 4 GiB at 1M / 10M.

3. **realtime**: the ingest API, the outbox relay and one segment worker as real
   processes (as in ``tests/segment/test_worker.py``); a demo tenant of 3,000 customers
   loaded through the API and an active kmeans run trained by the worker. Then an open
   loop of ``--rate`` orders/s (default 200) in batches of ``--batch`` (default 5) per
   ``POST /v1/orders`` for ``--duration`` s (default 30; ``--quick``: 10), 3 s of warm-up
   first; a customer gets a new order only once the previous one was answered. A poller
   reads every feature row of the tenant (stored ``frequency`` and ``updated_at``) every
   100 ms; an order's latency runs from its 200 answer to the first poll whose stored
   ``frequency`` counts it (orders before the load + its number among the customer's
   orders in the load); features and membership are written in one transaction.
   ``updated_at`` (the refresh transaction's start) minus the answer time is the wait
   before the refresh began. Reported: p50/p95/p99, achieved rate, the refresh backlog
   (outbox rows), the drain time after the last answer, CPU per process, and the
   "nothing lost" checks (every order reflected, final ``frequency`` = orders in the
   database, a membership of the active run, no dead letters). Target: p95 ≤ 2 s.
   ``--logs DIR`` keeps the processes' logs.

Before each measured part the run waits (up to 2 minutes) for other processes to go
quiet, and notes it when they did not. Needs the PostgreSQL at 127.0.0.1:5432 (user
``postgres``, trust; or ``SEGMENTA_TEST_ADMIN_URL``).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import segment_report as report
from bench.report import render_table
from bench.segment_data import ShopSize, generate_shop
from bench.segment_quality import Fit
from bench.segment_retrain import train_once
from bench.servers import machine_info, postmaster_pid, wait_for_quiet
from services.segment.settings import SegmentSettings
from shared.db import migrate
from tests.support.servers import private_redis, scratch_database, service_env, sqlalchemy_url

HERE = Path(__file__).resolve().parent
Block = tuple[str, str, list[list[str]]]  # part name, Markdown, summary rows
QUIET_CORES = 0.3


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextmanager
def database() -> Iterator[str]:
    with scratch_database("segmenta_bench_segment") as url:
        migrate(sqlalchemy_url(url))
        yield url


@contextmanager
def stack_env(tmp: Path, url: str) -> Iterator[dict[str, str]]:
    """Service environment on a private Redis: production settings, no scheduled retrain."""
    with private_redis(tmp) as redis_url:
        yield service_env(
            url,
            redis_url,
            SEGMENTA_ENVIRONMENT="production",
            SEGMENTA_SECRET_KEY=secrets.token_urlsafe(32),
            SEGMENTA_SEGMENT_RETRAIN_EVERY_S="0",
        )


@contextmanager
def work_dir(logs: Path | None, part: str) -> Iterator[Path]:
    """Where a part's files and process logs go: ``--logs``/PART, kept, or a temporary one."""
    if logs is not None:
        (logs / part).mkdir(parents=True, exist_ok=True)
        yield logs / part
        return
    with tempfile.TemporaryDirectory(prefix="segmenta-bench-") as tmpdir:
        yield Path(tmpdir)


def settle(url: str, notes: list[str], what: str) -> None:
    other = wait_for_quiet(url.rsplit("/", 1)[1], postmaster_pid(url), threshold=QUIET_CORES)
    if other >= QUIET_CORES:
        notes.append(f"{what}: began while other processes used {other:.2f} cores")
        log(f"  note: other processes use {other:.2f} cores")


# --- parts -----------------------------------------------------------------------------


def run_quality(args: argparse.Namespace, notes: list[str]) -> list[Block]:
    from bench.segment_quality import (
        compute,
        fit_all,
        fit_as_of_now,
        load_shop,
        truth_labels,
        wait_for_nlp,
    )
    from bench.segment_stack import ingest_key, running_stack
    from tests.support.http import tenant_of

    customers = 1_500 if args.quick else args.customers
    with work_dir(args.logs, "quality") as tmp, database() as url, stack_env(tmp, url) as env:
        workers = ["nlp"] if args.nlp_backend != "none" else []
        env = {**env, "SEGMENTA_NLP_BACKEND": args.nlp_backend}
        with running_stack(env, tmp, workers) as (api, engine):
            key = ingest_key(engine, "quality")
            tenant_id = tenant_of(engine, key)
            log(f"quality: loading a {customers:,}-customer demo shop through the API")
            counts, load_s = load_shop(api, key, engine, customers, tmp / "shop", log)
            analysed = 0
            if workers:
                log("  waiting for the nlp worker")
                analysed = wait_for_nlp(engine, tenant_id, 900)
            rows, features_s = compute(engine, tenant_id)
            log(f"  features: {rows:,} rows in {features_s:.1f} s")
            settle(url, notes, "quality")
            from services.segment.features import load_matrix
            from shared.db import session_scope

            with session_scope(engine) as session:
                pks = load_matrix(session, tenant_id=tenant_id).customer_pks
            truth = truth_labels(tmp / "shop", engine, tenant_id, pks)
            fits: list[Fit] = fit_all(engine, tenant_id, truth, log)
            default = SegmentSettings.model_fields["segment_algorithm"].default
            late, now = fit_as_of_now(engine, tenant_id, truth, default)
            log(f"  {default} k=auto, features as of now: ARI {late.ari:.3f}")
    text, summary = report.quality_block(
        fits,
        customers=customers,
        personas=len(set(truth)),
        default_algorithm=default,
        late=(late, now),
        load_s=load_s,
        counts=counts,
        analysed=analysed,
        nlp_backend=args.nlp_backend,
        features_s=features_s,
    )
    return [("quality", text, summary)]


SIZES = {
    "20k": ShopSize(20_000, 10, 5),
    "100k": ShopSize(100_000, 10, 5),
    "1m": ShopSize(1_000_000, 10, 5),
}


def run_retrain(args: argparse.Namespace, notes: list[str]) -> list[Block]:
    sizes = ["20k"] if args.quick else args.sizes
    blocks = []
    for name in sizes:
        size = SIZES[name]
        repeats = 1 if args.quick else (args.big_repeats if name == "1m" else args.repeats)
        with database() as url:
            log(f"retrain: generating {size.label}")
            started = time.perf_counter()
            tenant_id, counts = generate_shop(url, size, f"bench-retrain-{name}", log)
            runs = report.SizeRuns(
                size.label, size.customers, counts, time.perf_counter() - started
            )
            for number in range(1, repeats + 1):
                settle(url, notes, f"retrain-{name}")
                log(f"  run {number}/{repeats}")
                outcome = train_once(
                    url, tenant_id, args.algorithm, timeout_s=args.run_limit, log=log
                )
                runs.runs.append(outcome)
                peak = outcome.rss_peak / report.MiB
                stages = ", ".join(f"{k.strip()} {v:.1f}" for k, v in outcome.stages.items())
                log(f"  {outcome.seconds:.1f} s, peak RSS {peak:,.0f} MiB; {stages}")
                if outcome.error:
                    log(f"  failed: {outcome.error} (in {outcome.running})")
                    break
            if any(r.stopped_in_clv for r in runs.runs):
                log("  once more with CLV scoring skipped, to time the other stages")
                outcome = train_once(
                    url, tenant_id, args.algorithm, timeout_s=args.run_limit, skip_clv=True, log=log
                )
                runs.runs.append(outcome)
                log(f"  {outcome.seconds:.1f} s without CLV; {outcome.error or 'ok'}")
        blocks.append((f"retrain-{name}", *report.retrain_block(runs, args.algorithm)))
    return blocks


def run_realtime(args: argparse.Namespace, notes: list[str]) -> list[Block]:
    from bench.segment_stack import realtime

    duration = 10.0 if args.quick else args.duration
    with work_dir(args.logs, "realtime") as tmp, database() as url, stack_env(tmp, url) as env:
        figures = realtime(
            url,
            env,
            tmp,
            customers=args.rt_customers,
            rate=args.rate,
            batch=args.batch,
            duration=duration,
            connections=args.connections,
            settle=lambda: settle(url, notes, "realtime"),
            log=log,
        )
    return [("realtime", *report.realtime_block(figures))]


PARTS = {"quality": run_quality, "retrain": run_retrain, "realtime": run_realtime}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.segment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--only", choices=list(PARTS), action="append", help="run only PART")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--customers", type=int, default=5_000, help="quality: shop size")
    parser.add_argument(
        "--nlp-backend",
        choices=["local", "lexicon", "none"],
        default="local",
        help="quality: how reviews and transcripts are analysed",
    )
    parser.add_argument("--algorithm", default="minibatch_kmeans", help="retrain: algorithm")
    parser.add_argument(
        "--sizes", nargs="+", choices=list(SIZES), default=["100k", "1m"], help="retrain: sizes"
    )
    parser.add_argument("--repeats", type=int, default=3, help="retrain: runs at 100k")
    parser.add_argument("--big-repeats", type=int, default=1, help="retrain: runs at 1M")
    parser.add_argument("--run-limit", type=float, default=600.0, help="retrain: s per run")
    parser.add_argument("--rt-customers", type=int, default=3_000, help="realtime: shop size")
    parser.add_argument("--rate", type=float, default=200.0, help="realtime: orders/s")
    parser.add_argument("--batch", type=int, default=5, help="realtime: orders per request")
    parser.add_argument("--duration", type=float, default=30.0, help="realtime: seconds")
    parser.add_argument("--connections", type=int, default=16, help="realtime: connections")
    parser.add_argument("--logs", type=Path, help="keep data files and process logs here")
    args = parser.parse_args(argv)
    chosen = args.only or list(PARTS)
    command = " ".join(["python -m bench.segment", *(argv if argv is not None else sys.argv[1:])])
    blocks: dict[str, str] = {}
    notes: list[str] = []
    summary: list[list[str]] = []
    for part in chosen:
        started = time.perf_counter()
        produced = PARTS[part](args, notes)
        wall = time.perf_counter() - started
        date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        for name, body, rows in produced:
            summary += rows
            extra = f"* Wall time of `--only {part}`: {wall:.0f} s."
            extra += "".join(f"\n* Note: {n}" for n in notes if n.startswith(name))
            blocks[name] = report.part_block(name, f"{body.rstrip()}\n{extra}", rows, command, date)
        log(f"{part} done in {wall:.0f} s")
    with scratch_database("segmenta_bench_segment") as url:
        machine = machine_info(url)
    machine_text = "### Machine\n\n" + "\n".join(f"* {k}: {v}" for k, v in machine.items())
    # Read just before writing: another part may have been written meanwhile.
    report.write_blocks(args.out, {**report.previous_blocks(args.out), **blocks}, machine_text)
    print(render_table(report.SUMMARY_HEADER, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
