"""Collected figures, the verdicts against the targets, and RESULTS.md."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench.results_file import write_section
from bench.servers import KINDS, CpuShare

MiB = 2**20
FLAT_MIB = 64  # "memory flat": the API's peak RSS during an import stays within this of start


@dataclass
class Series:
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def spread(self, fmt: str = ",.0f", scale: float = 1.0) -> str:
        if len(self.values) < 2:
            return ""
        lo, hi = min(self.values) * scale, max(self.values) * scale
        return f" ({lo:{fmt}}-{hi:{fmt}})"

    def show(self, fmt: str = ",.0f", scale: float = 1.0, unit: str = "") -> str:
        return f"{self.median * scale:{fmt}}{unit}{self.spread(fmt, scale)}"


@dataclass
class Check:
    """Nothing lost: what was sent and acknowledged against what the tenant holds."""

    run: int
    bench: str
    sent: int
    acknowledged: int
    stored: int

    @property
    def ok(self) -> bool:
        """Every acknowledged record is stored, and nothing refused was stored."""
        return self.acknowledged == self.stored <= self.sent


@dataclass
class Results:
    copy_a: Series = field(default_factory=Series)
    batches: Series = field(default_factory=Series)
    copy_import: Series = field(default_factory=Series)
    imports: Series = field(default_factory=Series)
    rss: list[tuple[int, int, int]] = field(default_factory=list)
    single: Series = field(default_factory=Series)
    single_p50: Series = field(default_factory=Series)
    single_p99: Series = field(default_factory=Series)
    raw: Series = field(default_factory=Series)
    raw_p50: Series = field(default_factory=Series)
    raw_p99: Series = field(default_factory=Series)
    bare: Series = field(default_factory=Series)
    bare_p99: Series = field(default_factory=Series)
    single_errors: list[int] = field(default_factory=list)
    diagnostic: tuple[float, float, float, int] | None = None  # req/s, p50, p99, errors
    checks: list[Check] = field(default_factory=list)
    cpu: dict[str, list[CpuShare]] = field(default_factory=dict)  # benchmark -> per run
    notes: list[str] = field(default_factory=list)

    @property
    def memory_flat(self) -> bool:
        return bool(self.rss) and all(peak - start <= FLAT_MIB * MiB for start, peak, _ in self.rss)


def _ratio(ours: Series, ceiling: Series) -> float:
    return ours.median / ceiling.median if ceiling.median else float("nan")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _mib(value: float) -> str:
    return f"{value / MiB:,.0f} MiB"


def table(r: Results, rows: int, import_rows: int, concurrency: int, pool: int) -> list[list[str]]:
    """[benchmark, ours, ceiling, ratio, target, result] rows."""
    batch_ratio = _ratio(r.batches, r.copy_a)
    import_ratio = _ratio(r.imports, r.copy_import)
    single_ratio = _ratio(r.single, r.raw)
    rss_start = statistics.median(s for s, _, _ in r.rss) if r.rss else 0
    rss_peak = statistics.median(p for _, p, _ in r.rss) if r.rss else 0
    rss_end = statistics.median(e for _, _, e in r.rss) if r.rss else 0
    growth = max((p - s for s, p, _ in r.rss), default=0)
    errors = f"; {sum(r.single_errors):,} error answers" if any(r.single_errors) else ""
    lines = [
        [
            f"Raw COPY into `event`, {rows:,} rows (ceiling A)",
            "-",
            f"{r.copy_a.show()} rows/s",
            "-",
            "-",
            "-",
        ],
        [
            f"`POST /v1/events`, 2,500-record batches, 4 clients, {rows:,} rows",
            f"{r.batches.show()} rows/s",
            f"{r.copy_a.median:,.0f} rows/s (A)",
            f"{batch_ratio:.0%}",
            "≥ 25%",
            _verdict(batch_ratio >= 0.25),
        ],
        [
            f"`POST /v1/import/events`, {import_rows:,}-row JSONL, streamed",
            f"{r.imports.show()} rows/s",
            f"{r.copy_import.median:,.0f} rows/s (COPY of the same {import_rows:,} rows)",
            f"{import_ratio:.0%} ({_ratio(r.imports, r.copy_a):.0%} of A)",
            "≥ 40%",
            _verdict(import_ratio >= 0.40),
        ],
        [
            "Import: API RSS start / peak / end (median)",
            f"{_mib(rss_start)} / {_mib(rss_peak)} / {_mib(rss_end)}",
            "-",
            f"max growth {_mib(growth)}",
            f"flat (peak ≤ start + {FLAT_MIB} MiB)",
            _verdict(r.memory_flat),
        ],
        [
            f"`POST /v1/events`, one event per request, {concurrency} connections",
            f"{r.single.show()} req/s{errors}",
            f"{r.raw.median:,.0f} rows/s (one INSERT per commit, {concurrency} connections)",
            f"{single_ratio:.0%}",
            "≥ 50%",
            _verdict(single_ratio >= 0.5),
        ],
        [
            "Single-record latency p50 / p99",
            f"{r.single_p50.median * 1000:.1f} ms / {r.single_p99.show('.1f', 1000, ' ms')}",
            f"raw INSERT: {r.raw_p50.median * 1000:.1f} / {r.raw_p99.median * 1000:.1f} ms",
            "-",
            "p99 ≤ 50 ms",
            _verdict(r.single_p99.median <= 0.050),
        ],
        [
            f"Bare FastAPI + uvicorn, one JSON POST, {concurrency} connections (ceiling b)",
            f"{r.single.median:,.0f} req/s (ingest API)",
            f"{r.bare.show()} req/s, p99 {r.bare_p99.median * 1000:.1f} ms",
            f"{_ratio(r.single, r.bare):.0%}",
            "- (information)",
            "-",
        ],
    ]
    if r.diagnostic:
        rate, p50, p99, errs = r.diagnostic
        lines.append(
            [
                f"Diagnostic: single records with `SEGMENTA_DB_POOL_SIZE={pool}` (one run)",
                f"{rate:,.0f} req/s, p50 {p50 * 1000:.1f} / p99 {p99 * 1000:.1f} ms, {errs} errors",
                f"{r.raw.median:,.0f} rows/s",
                f"{rate / r.raw.median:.0%}" if r.raw.median else "-",
                "- (not the production default)",
                "-",
            ]
        )
    return lines


def render_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


HEADER = ["Benchmark", "Ours: median (min-max)", "Raw ceiling: median", "Ratio", "Target", "Result"]


def check_rows(r: Results) -> list[list[str]]:
    return [
        [
            str(c.run),
            c.bench,
            f"{c.sent:,}",
            f"{c.acknowledged:,}",
            f"{c.sent - c.acknowledged:,}",
            f"{c.stored:,}",
            _verdict(c.ok),
        ]
        for c in r.checks
    ]


def cpu_rows(r: Results) -> list[list[str]]:
    rows = []
    for bench, shares in r.cpu.items():
        cores = [f"{statistics.median(s.cores(k) for s in shares):.2f}" for k in KINDS]
        busy = statistics.median(s.busy_s / s.wall_s for s in shares if s.wall_s)
        rows.append([bench, *cores, f"{busy:.2f}"])
    return rows


HOW = """\
### How measured

* One run of `python -m bench.ingest` makes a scratch Postgres database (migrated to head),
  a private Redis, and starts the API with the production command,
  `uvicorn services.ingest.main:app --no-access-log` (one process, otherwise default
  uvicorn and Segmenta settings, so a database pool of 10 + 10 overflow). The load
  generator, the API and Postgres share the same machine and its {cores} CPU cores, so
  every figure is CPU-bound on a shared box, ceilings included. Before each measurement
  the benchmark waits (up to 2 minutes) until other processes on the machine use under
  0.2 cores.
* Each benchmark runs {repeats} time(s); the table shows the median (and min-max).
  Ratios are median over median. The ceilings run in the same session, interleaved with
  the API runs, against the same `event` table (same indexes, unique constraint and
  foreign keys) so that the table's growth affects both alike.
* Every run uses a fresh tenant with the same {customers:,} customers created first by
  plain INSERTs, and fresh event ids, so every row is new. API keys carry a per-key rate
  limit high enough not to throttle the load (the default is 6,000 requests a minute).
* Ceiling A: the same rows the API gets, pre-encoded in COPY text format (encoding not
  timed), sent with psycopg `cursor.copy()` in 1 MiB blocks into `event`, then committed.
* Batches: the {rows:,} events as pre-serialised 2,500-record JSON arrays, posted by
  {threads} httpx clients in threads; rows/s = rows / wall time until the last answer.
* Import: a {import_rows:,}-row JSONL file (`write_events_file`), streamed by httpx in
  1 MiB chunks (chunked transfer encoding); the API's RSS is sampled every 0.25 s.
  Its ceiling is a COPY of the same rows into a fresh tenant, measured as ceiling A.
* Single records: {concurrency} keep-alive connections on asyncio, each sending one event
  per request back to back ({client} client, see `bench/http.py`), {warmup:g} s warm-up
  then {duration:g} s measured; latency is the client-side time per request. Ceiling (a):
  {concurrency} threads with a psycopg connection each, one INSERT per transaction
  (autocommit, `synchronous_commit` as the server is configured). Ceiling (b):
  `bench/bare_app.py`, one POST route that parses the JSON body, same uvicorn command.
* Nothing lost: after each run, `count(*)` of the tenant's events is compared with the
  records acknowledged (200) and sent; records refused with an error answer must not be
  stored, acknowledged ones must all be.
* CPU: per-process CPU time over each measurement (psutil), in cores used on average.
"""


def write_results(
    path: Path,
    r: Results,
    machine: dict[str, str],
    settings: dict[str, int | float],
    command: str,
    client: str,
) -> str:
    rows, import_rows = int(settings["rows"]), int(settings["import_rows"])
    concurrency, pool = int(settings["concurrency"]), int(settings["diagnostic_pool"])
    main = render_table(HEADER, table(r, rows, import_rows, concurrency, pool))
    checks = render_table(
        ["Run", "Benchmark", "Sent", "Acknowledged", "Refused", "In database", "Result"],
        check_rows(r),
    )
    cpu = render_table(["Benchmark", *KINDS, "all (machine)"], cpu_rows(r))
    machine_lines = "\n".join(f"* {k}: {v}" for k, v in machine.items())
    notes = "\n".join(f"* {n}" for n in r.notes) or "* none"
    how = HOW.format(**settings, cores=machine.get("cores", "?"), client=client)
    text = f"""## Ingest

Produced by `{command}` on {machine.get("date", "?")}; {int(settings["repeats"])} run(s) each.

{main}

### Nothing lost

{checks}

### Where the CPU went (cores used, median of runs)

{cpu}

### Machine

{machine_lines}

### Notes

{notes}

{how}
### Reproduce

```
make bench            # or: python -m bench.ingest   (add --quick for a smoke run)
```

It needs a local PostgreSQL at 127.0.0.1:5432 (user `postgres`, trust auth, or set
`SEGMENTA_TEST_ADMIN_URL`); it creates and drops its own database.
"""
    write_section(path, "ingest", text)
    return main
