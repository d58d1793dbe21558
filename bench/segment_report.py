"""The segment benchmark's figures as Markdown, one block per part, in ``RESULTS.md``.

The section ``segment`` holds one block per part (quality, retrain, realtime), each with
its own date and command; running one part (``--only``) rewrites its block and keeps the
others as they were.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.report import render_table
from bench.results_file import write_section
from bench.segment_quality import Fit
from bench.segment_realtime import Freshness, percentile
from bench.segment_retrain import STAGES, RunOutcome
from segmenta.demo.generate import DEFAULT_NOW

GiB = 2**30
MiB = 2**20
ARI_TARGET = 0.8
# After the last nested stage of a stage: a row for the time none of them covers.
REST = {
    "  CLV values": ("CLV fit + score writes", "P(alive), expected purchases, score upsert"),
    "  write memberships": ("activation", "run flags and anything not listed"),
}
RETRAIN_TARGET_S = 180.0
RSS_TARGET = 4 * GiB
P95_TARGET_S = 2.0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _optional(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else f"{value:{fmt}}"


# --- quality -------------------------------------------------------------------------


def quality_block(
    fits: list[Fit],
    *,
    customers: int,
    personas: int,
    default_algorithm: str,
    load_s: float,
    counts: dict[str, int],
    analysed: int,
    nlp_backend: str,
    features_s: float,
    late: tuple[Fit, datetime],
) -> tuple[str, list[list[str]]]:
    rows = [
        [
            f"`{f.algorithm}`" + (" (default)" if f.algorithm == default_algorithm else ""),
            f.k,
            str(f.segments),
            f"**{f.ari:.3f}**",
            _optional(f.silhouette),
            f"{f.fidelity:.2f}",
            f"{f.noise_share:.0%}" if f.noise_share else "-",
            f"{f.fit_s:.2f}",
        ]
        for f in fits
    ]
    table = render_table(
        [
            "Algorithm",
            "k asked",
            "Segments",
            "ARI vs personas",
            "Silhouette",
            "Surrogate fidelity",
            "Noise",
            "Fit (s)",
        ],
        rows,
    )
    default = [f for f in fits if f.algorithm == default_algorithm]
    best_auto = max((f.ari for f in default if f.k == "auto"), default=float("nan"))
    best_k = max((f.ari for f in default if f.k != "auto"), default=float("nan"))
    loaded = ", ".join(f"{n:,} {kind}" for kind, n in counts.items())
    text = f"""### 1. Quality on the demo shop ({customers:,} customers, {personas} personas)

{table}

Target: the default algorithm (`{default_algorithm}`) reaches ARI ≥ {ARI_TARGET} against
the personas: k="auto" **{best_auto:.3f}** ({verdict(best_auto >= ARI_TARGET)}), k={personas}
**{best_k:.3f}** ({verdict(best_k >= ARI_TARGET)}).

* Data: `generate({customers}, seed=7)` ({loaded}), streamed through the ingest API's
  import endpoint in {load_s:.0f} s; reviews and transcripts analysed by the nlp worker
  (backend `{nlp_backend}`): {analysed:,} analyses with a score. Features v1 computed in
  {features_s:.1f} s, as of the generator's `now` (2026-11-01).
* Each fit: `Segmenter(algorithm, k, seed=7, features=MODEL_FEATURES["v1"])`, every
  other parameter at its default (the training pipeline's settings); ARI is
  `adjusted_rand_score(personas, labels_)` over every customer, noise (-1) counting as
  one more label. Silhouette: the model's own metric (on a 3,000-row sample, in its
  scaled space). Surrogate fidelity: share of customers whose segment the explanation's
  decision tree predicts. Fit time: `fit` alone, one thread.
* Density methods choose their own number of segments (k is not asked).
* A training run computes features as of the wall clock, not the data's `now`: with
  features as of {late[1]:%Y-%m-%d %H:%M} UTC ({(late[1] - DEFAULT_NOW).days} days after the
  data's `now`) `{late[0].algorithm}` k="auto" finds {late[0].segments} segments,
  ARI **{late[0].ari:.3f}**.
"""
    summary = [
        f"Quality: ARI of `{default_algorithm}` vs personas (k=auto / k={personas})",
        f"{best_auto:.3f} / {best_k:.3f}",
        "-",
        f"≥ {ARI_TARGET}",
        verdict(best_auto >= ARI_TARGET),
    ]
    return text, [summary]


# --- retrain -------------------------------------------------------------------------


@dataclass
class SizeRuns:
    label: str
    customers: int
    counts: dict[str, int]
    generate_s: float
    runs: list[RunOutcome] = field(default_factory=list)

    def ok_runs(self) -> list[RunOutcome]:
        """Complete runs (CLV included) that succeeded."""
        return [r for r in self.runs if r.error is None and not r.skipped_clv]


def _spread(values: list[float], fmt: str = ".1f") -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) < 2:
        return f"{med:{fmt}}"
    return f"{med:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def _run_header(number: int, run: RunOutcome) -> str:
    kind = "retrain" if run.had_previous else "first"
    if run.skipped_clv:
        kind += ", CLV skipped"
    return f"run {number} ({kind})" + (" STOPPED" if run.error else "")


def _stage_cell(run: RunOutcome, label: str) -> str:
    if label in run.stages:
        return f"{run.stages[label]:.1f}"
    running = (run.running or "").split(" > ")
    return "running when stopped" if label.strip() in running else "-"


def _optimiser(run: RunOutcome) -> str:
    names = {4: "BG/NBD", 3: "Gamma-Gamma"}
    fits = [
        f"{names.get(n, n)} {evaluations:,} evaluations in {abs(seconds):.0f} s"
        + (" (stopped)" if seconds < 0 else "" if converged else " (not converged)")
        for n, evaluations, converged, seconds in run.optimiser
    ]
    return "; ".join(fits) or "-"


def retrain_block(size: SizeRuns, algorithm: str) -> tuple[str, list[list[str]]]:
    runs = size.runs
    header = ["Stage (s)", *[_run_header(i, r) for i, r in enumerate(runs, 1)], "median (ok runs)"]
    ok = size.ok_runs()
    rows: list[list[str]] = []
    for label, _, _ in STAGES:
        name = f"&nbsp;&nbsp;↳ {label.strip()}" if label.startswith(" ") else label
        median = _spread([r.stages.get(label, 0.0) for r in ok])
        rows.append([name, *[_stage_cell(r, label) for r in runs], median])
        if label in REST:
            parent, what = REST[label]
            rests = [r.rest_s(parent) for r in runs]
            rows.append(
                [
                    f"&nbsp;&nbsp;↳ rest: {what}",
                    *["-" if v is None else f"{v:.1f}" for v in rests],
                    _spread([v for r in ok if (v := r.rest_s(parent)) is not None]),
                ]
            )
    rows.append(
        [
            "other (commits, progress rows, lock)",
            *[f"{r.other_s:.1f}" if not r.error else "-" for r in runs],
            _spread([r.other_s for r in ok]),
        ]
    )
    rows.append(
        [
            "**total `train_run`**",
            *[f"**{r.seconds:.1f}**" for r in runs],
            f"**{_spread([r.seconds for r in ok])}**",
        ]
    )
    rows.append(
        [
            "raw `MiniBatchKMeans` fit, same k and rows (baseline)",
            *[f"{r.raw_fit_s:.2f}" if not r.error else "-" for r in runs],
            _spread([r.raw_fit_s for r in ok], ".2f"),
        ]
    )
    rows.append(
        [
            "peak RSS of the training process (MiB)",
            *[f"{r.rss_peak / MiB:,.0f}" for r in runs],
            _spread([r.rss_peak / MiB for r in ok], ",.0f"),
        ]
    )
    rows.append(
        [
            "peak private memory (USS) of the database's Postgres backends (MiB)",
            *[f"{r.pg_peak / MiB:,.0f}" for r in runs],
            _spread([r.pg_peak / MiB for r in ok], ",.0f"),
        ]
    )
    rows.append(
        [
            "segments chosen / silhouette",
            *[
                f"{r.chosen_k} / {_optional(r.silhouette, '.2f')}" if not r.error else "-"
                for r in runs
            ],
            "",
        ]
    )
    table = render_table(header, rows)
    loaded = ", ".join(f"{n:,} {t}" for t, n in size.counts.items())
    details = [f"* Data: {loaded}; generated in SQL in {size.generate_s:.0f} s."]
    for i, run in enumerate(runs, 1):
        state = f"**did not finish**: {run.error}" if run.error else run.moved
        details.append(f"* Run {i}: {state}. CLV optimiser: {_optimiser(run)}.")
    total = statistics.median([r.seconds for r in ok]) if ok else float("nan")
    peak = max((r.rss_peak for r in runs), default=0)
    fitted = [r for r in runs if r.error is None]
    raw = statistics.median([r.raw_fit_s for r in fitted]) if fitted else float("nan")
    fit = statistics.median([r.stages.get("fit (Segmenter.fit)", 0.0) for r in fitted] or [0.0])
    without = [r.seconds for r in runs if r.skipped_clv and r.error is None]
    judged = size.customers >= 1_000_000
    passed = bool(ok) and len(ok) == len(runs) and total <= RETRAIN_TARGET_S and peak <= RSS_TARGET
    ours = (
        f"{total:.1f} s, {peak / MiB:,.0f} MiB"
        if ok
        else f"did not finish (peak {peak / MiB:,.0f} MiB)"
    )
    if without:
        ours += f"; without CLV {statistics.median(without):.1f} s"
    summary = [
        [
            f"Full retrain, {size.label} (`{algorithm}`): total, peak RSS",
            ours,
            f"raw fit {raw:.2f} s (`Segmenter.fit` {fit:.1f} s)" if fitted else "-",
            f"≤ {RETRAIN_TARGET_S:.0f} s, ≤ 4 GiB" + ("" if judged else " (at 1M)"),
            verdict(passed) if judged else "-",
        ]
    ]
    text = f"""### 2. Full retrain, {size.label} (`{algorithm}`, k="auto")

{table}

{chr(10).join(details)}
"""
    return text, summary


# --- realtime ------------------------------------------------------------------------


@dataclass
class RealtimeFigures:
    customers: int
    rate: float
    batch: int
    connections: int
    duration: float
    sent: int
    accepted: int
    errors: list[str]
    achieved_rate: float
    late_starts: int
    freshness: Freshness
    max_backlog: int
    drain_s: float | None
    frequency_mismatches: int
    missing_memberships: int
    dead_letters: int
    poll_s: float
    cpu: dict[str, float]
    worker_batches: str


def realtime_block(f: RealtimeFigures) -> tuple[str, list[list[str]]]:
    lat, waits = f.freshness.latencies, f.freshness.waits
    p95 = percentile(lat, 95)
    lost = f.freshness.unreflected + f.frequency_mismatches + f.missing_memberships
    rows = [
        ["orders sent / accepted", f"{f.sent:,} / {f.accepted:,}"],
        ["achieved rate (accepted orders/s)", f"{f.achieved_rate:,.0f} (asked {f.rate:,.0f})"],
        [
            "answer → refresh visible: p50 / p95 / p99 / max",
            f"**{percentile(lat, 50):.2f} / {p95:.2f} / {percentile(lat, 99):.2f} / "
            f"{max(lat, default=float('nan')):.2f} s**",
        ],
        [
            "answer → refresh began (`updated_at`): p50 / p95 / p99",
            f"{percentile(waits, 50):.2f} / {percentile(waits, 95):.2f} / "
            f"{percentile(waits, 99):.2f} s",
        ],
        ["max backlog (pending refresh outbox rows)", f"{f.max_backlog:,}"],
        [
            "drain: last answer → every order reflected",
            "not within the limit" if f.drain_s is None else f"{f.drain_s:.1f} s",
        ],
        ["orders never reflected", f"{f.freshness.unreflected:,}"],
        [
            "customers whose final `frequency` ≠ their orders in the database",
            f"{f.frequency_mismatches:,}",
        ],
        ["ordering customers without a membership of the active run", f"{f.missing_memberships:,}"],
        ["dead letters", f"{f.dead_letters:,}"],
        ["error answers", f"{len(f.errors):,}"],
        ["batches that found every connection busy", f"{f.late_starts:,}"],
        ["segment worker: refresh tasks / customers per task", f.worker_batches],
        ["CPU, cores used during the load", ", ".join(f"{k} {v:.2f}" for k, v in f.cpu.items())],
    ]
    table = render_table(["Figure", "Value"], rows)
    errors = "".join(f"\n  * `{e[:160]}`" for e in f.errors[:3])
    text = f"""### 3. Near-real-time re-assignment under {f.rate:,.0f} orders/s

{table}

Target: p95 ≤ {P95_TARGET_S:.0f} s, nothing lost: **{verdict(p95 <= P95_TARGET_S)}**,
**{verdict(lost == 0 and f.dead_letters == 0)}**.{errors}

* Stack: the ingest API (uvicorn, one process), the outbox relay and one segment worker
  (Celery, concurrency 1, prefetch 1), as the worker tests run them, on a scratch
  database and a private Redis; production settings otherwise (relay batch 200, poll
  0.2 s). The tenant is `generate({f.customers}, seed=7)` loaded through the API, with
  an active `kmeans` run trained by the worker itself.
* Load: open loop, {f.batch} order(s) per `POST /v1/orders` every
  {f.batch / f.rate * 1000:.0f} ms for {f.duration:.0f} s, over {f.connections}
  keep-alive connections (a batch is sent at its time whether or not earlier answers
  came back); each order is for a random customer of the shop without an order in
  flight (so each customer's orders commit in the order they are answered), 1-2 lines,
  placed now. 3 s of the same load warm the stack up first (not measured).
* Latency: for each accepted order, from the wall-clock time its 200 answer arrived to
  the start of the first poll (every {f.poll_s * 1000:.0f} ms, all of the tenant's
  feature rows) that saw the customer's stored `frequency` count it (orders before the
  load + its number among the customer's orders in the load). Features and membership
  are written in one transaction, so the membership was re-assigned at the same moment.
  An upper bound, up to one poll late. "Refresh began" is the refresh transaction's
  start (`updated_at`) minus the answer time; it is negative when the worker started
  the refresh before the answer reached the client.
* Nothing lost: every order must be reflected; afterwards every ordering customer's
  stored `frequency` must equal their orders in the database, they must have a
  membership of the active run, and no refresh may be dead-lettered.
"""
    summary = [
        [
            f"Re-assignment after an order, {f.rate:,.0f} orders/s for {f.duration:.0f} s: p95",
            f"{p95:.2f} s (p50 {percentile(lat, 50):.2f}, p99 {percentile(lat, 99):.2f}); "
            f"{f.achieved_rate:,.0f} orders/s",
            "-",
            f"p95 ≤ {P95_TARGET_S:.0f} s",
            verdict(p95 <= P95_TARGET_S),
        ],
        [
            "Nothing lost (reflected, frequency = orders, membership, no dead letters)",
            f"{lost + f.dead_letters} problems",
            "-",
            "0",
            verdict(lost == 0 and f.dead_letters == 0),
        ],
    ]
    return text, summary


# --- the section ---------------------------------------------------------------------

SUMMARY_HEADER = ["Benchmark", "Ours", "Baseline", "Target", "Result"]


ORDER = ("quality", "retrain-20k", "retrain-100k", "retrain-1m", "realtime")
_BLOCK = re.compile(r"<!-- part (\S+) -->\n(.*?)\n<!-- part \1 end -->", re.DOTALL)


def previous_blocks(path: Path) -> dict[str, str]:
    """The blocks already in the results file, by part."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return {str(name): str(body) for name, body in _BLOCK.findall(text)}


def write_blocks(path: Path, blocks: dict[str, str], machine: str) -> None:
    names = sorted(blocks, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    parts = "\n\n".join(
        f"<!-- part {name} -->\n{blocks[name]}\n<!-- part {name} end -->" for name in names
    )
    text = f"""## Segment

Produced by `python -m bench.segment` (see its docstring). Each part below says when and
with which command it ran; `--only PART` (and, for the retrain, `--sizes`) rewrites those
parts and keeps the others.

{parts}

{RETRAIN_HOW}
{machine}

### Reproduce

```
python -m bench.segment --quick                   # smoke run of every part, small sizes
python -m bench.segment --only quality
python -m bench.segment --only retrain --sizes 100k
python -m bench.segment --only retrain --sizes 1m
python -m bench.segment --only realtime
```

It needs a local PostgreSQL at 127.0.0.1:5432 (user `postgres`, trust auth, or set
`SEGMENTA_TEST_ADMIN_URL`); it creates and drops its own databases.
"""
    write_section(path, "segment", text)


RETRAIN_HOW = """### How the retrain is measured

* The shop is made in SQL with `generate_series` (`bench/segment_data.py`): customers,
  500 products, 10 orders per customer on average (skewed: a few customers order often,
  about a fifth never do; dates over two years, more of them recent; 2.5 lines each),
  5 events per customer over the last year, reviews and transcripts (a fifth and a
  tenth of the customers) with their sentiment analyses.
* Each run is `services.segment.training.pipeline.train_run` on a new `pending` run row
  (`promote: always`, so activation always runs), in a freshly spawned Python process
  with the worker's settings (one BLAS/OpenMP thread for the models, a pool of 2
  connections). The stages are the pipeline's own calls, timed by wrapping them for the
  run (the CLV optimiser is wrapped too, to count its likelihood evaluations); "other"
  is the rest of the wall time (commits, progress rows, the advisory lock). The first run
  of a tenant has no previous run; later ones load the active run's members and
  centroids to keep segment keys stable, and rewrite every feature and score row.
* Targets (at 1M customers / 10M orders): total ≤ 180 s and peak RSS ≤ 4 GiB. RSS is
  sampled every 0.2 s; Postgres' share is the summed unique memory (USS) of the
  database's backends, sampled every second (shared buffers are not in it).
* Baseline: scikit-learn's `MiniBatchKMeans(n_clusters=<chosen k>, n_init=3,
  batch_size=1024)` on the same rows, scaled as the model scales them, one thread, in
  the same process right after the run. `Segmenter.fit` also searches k in 2..10 on a
  10,000-row sample (9 fits, each scored) before its final fit on every row.
* A run still going after `--run-limit` seconds is stopped and reported with the stage
  it was in.
"""


def part_block(part: str, body: str, summary: list[list[str]], command: str, date: str) -> str:
    table = render_table(SUMMARY_HEADER, summary)
    return f"_Produced by `{command}` on {date}._\n\n{table}\n\n{body.strip()}"
