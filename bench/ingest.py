"""Ingest throughput next to raw Postgres ceilings: ``python -m bench.ingest [--quick]``.

See ``bench/README.md`` for what each benchmark measures; results go to
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench import loads
from bench.http import Client, single_posts
from bench.loads import LoadResult
from bench.report import Check, Results, write_results
from bench.servers import (
    CpuMeter,
    machine_info,
    postmaster_pid,
    start_uvicorn,
    wait_for_quiet,
)
from segmenta.demo.event_stream import write_events_file
from shared.auth import Scope, create_api_key
from shared.db import create_db_engine, migrate, session_scope
from shared.settings import PostgresSettings
from tests.support.servers import (
    Process,
    private_redis,
    scratch_database,
    service_env,
    sqlalchemy_url,
)

HERE = Path(__file__).resolve().parent
RATE_LIMIT = 1_000_000_000  # per key and minute: the benchmark must not be throttled
QUIET_CORES = 0.2  # other processes above this at the start of a measurement get a note
DIAGNOSTIC_POOL = 30  # SEGMENTA_DB_POOL_SIZE for the diagnostic single-record run


@dataclass(frozen=True)
class Config:
    rows: int = 300_000
    import_rows: int = 1_000_000
    repeats: int = 3
    batch: int = 2_500
    threads: int = 4
    concurrency: int = 50
    warmup: float = 2.0
    duration: float = 15.0
    customers: int = loads.CUSTOMERS


QUICK = Config(rows=25_000, import_rows=100_000, repeats=1, warmup=1.0, duration=4.0)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Bench:
    def __init__(self, cfg: Config, url: str, env: dict[str, str], tmp: Path, client: Client):
        self.cfg, self.url, self.env, self.tmp, self.client = cfg, url, env, tmp, client
        self.database = url.rsplit("/", 1)[1]
        self.postmaster = postmaster_pid(url)
        self.engine = create_db_engine(PostgresSettings(database_url=sqlalchemy_url(url)))
        self.results = Results()
        self.tenants = 0
        self.api, self.base = self.start("services.ingest.main:app", env)
        self.bare, self.bare_base = self.start("bench.bare_app:app", env)

    def start(self, app: str, env: dict[str, str]) -> tuple[Process, str]:
        return start_uvicorn(app, env, self.tmp / f"{app.split(':')[0]}-{self.tenants}.log")

    def close(self) -> None:
        self.bare.stop()
        self.api.stop()
        self.engine.dispose()

    def tenant(self, label: str, *, key: bool) -> tuple[int, dict[str, int], str]:
        """A fresh tenant with its customers, and an ingest key for it when ``key``."""
        self.tenants += 1
        name = f"bench-{label}-{self.tenants}-{secrets.token_hex(3)}"
        tenant_id, pks = loads.new_tenant(self.url, name, self.cfg.customers)
        if not key:
            return tenant_id, pks, ""
        with session_scope(self.engine) as session:
            issued = create_api_key(
                session,
                client="bench",
                scopes=[Scope.INGEST_WRITE.value],
                tenant=name,
                rate_limit_per_minute=RATE_LIMIT,
            )
        return tenant_id, pks, issued.key

    @contextmanager
    def measured(self, bench: str, server: Process | None) -> Iterator[CpuMeter]:
        """Waits for the machine to be quiet, then measures the CPU of the block."""
        other = wait_for_quiet(self.database, self.postmaster)
        if other >= QUIET_CORES:
            self.results.notes.append(
                f"{bench}: began while other processes used {other:.2f} cores"
            )
        with CpuMeter(server.proc.pid if server else None, self.database, self.postmaster) as meter:
            yield meter
        self.results.cpu.setdefault(bench, []).append(meter.share)

    def check(self, run: int, bench: str, sent: int, acknowledged: int, tenant_id: int) -> None:
        stored = loads.count_events(self.url, tenant_id)
        check = Check(run, bench, sent, acknowledged, stored)
        self.results.checks.append(check)
        if not check.ok:
            log(f"  !! {bench}: sent {sent}, acknowledged {acknowledged}, stored {stored}")

    def warm_up(self, import_path: Path | None) -> None:
        _, _, key = self.tenant("warmup", key=True)
        url = f"{self.base}/v1/events"
        if import_path is None:  # single records only
            single_posts(url, key, self.cfg.concurrency, 0, 2.0, 7, self.client)
            return
        prepared = loads.prepare_events(5 * self.cfg.batch, seed=9, batch=self.cfg.batch)
        loads.post_batches(self.base, key, prepared.bodies, self.cfg.threads)
        small = import_path.with_name("warmup.jsonl")
        write_events_file(small, 20_000, seed=8, fmt="jsonl")
        loads.import_file(self.base, key, small, self.api.proc.pid)
        single_posts(url, key, self.cfg.concurrency, 0, 2.0, 7, self.client)

    def copy(self, run: int, bench: str, rows: list[loads.EventRow]) -> float:
        tenant_id, pks, _ = self.tenant("copy", key=False)
        blocks = loads.copy_blocks(rows, tenant_id, pks)
        with self.measured(bench, None):
            seconds = loads.copy_ceiling(self.url, blocks)
        self.check(run, bench, len(rows), len(rows), tenant_id)
        log(f"  {bench}: {len(rows):,} rows in {seconds:.1f} s")
        return len(rows) / seconds

    def bulk(self, run: int, import_path: Path, import_rows: list[loads.EventRow]) -> None:
        cfg, r = self.cfg, self.results
        prepared = loads.prepare_events(cfg.rows, seed=100 + run, batch=cfg.batch)
        r.copy_a.add(self.copy(run, "raw COPY (A)", prepared.rows))

        tenant_id, _, key = self.tenant("batches", key=True)
        with self.measured("batches", self.api):
            batches = loads.post_batches(self.base, key, prepared.bodies, cfg.threads)
        r.batches.add(cfg.rows / batches.seconds)
        r.notes += [f"batch run {run}: {f}" for f in batches.failures[:3]]
        self.check(run, "batches", cfg.rows, batches.accepted, tenant_id)
        log(f"  batches: {cfg.rows:,} rows in {batches.seconds:.1f} s")
        del prepared

        r.copy_import.add(self.copy(run, "raw COPY (import rows)", import_rows))
        tenant_id, _, key = self.tenant("import", key=True)
        with self.measured("import", self.api):
            result = loads.import_file(self.base, key, import_path, self.api.proc.pid)
        if result.failure:
            r.notes.append(f"import run {run} failed: {result.failure}")
        r.imports.add(0.0 if result.failure else cfg.import_rows / result.seconds)
        r.rss.append((result.rss.start, result.rss.peak, result.rss.end))
        self.check(run, "import", cfg.import_rows, result.accepted, tenant_id)
        mib = [v >> 20 for v in (result.rss.start, result.rss.peak, result.rss.end)]
        log(f"  import: {cfg.import_rows:,} rows in {result.seconds:.1f} s; RSS MiB {mib}")

    def single_api(self, run: int, bench: str) -> LoadResult:
        cfg = self.cfg
        tenant_id, _, key = self.tenant("single", key=True)
        with self.measured(bench, self.api):
            url = f"{self.base}/v1/events"
            res = single_posts(
                url, key, cfg.concurrency, cfg.warmup, cfg.duration, 600 + run, self.client
            )
        sent = res.ok_total + len(res.errors)
        kinds = Counter(e.split(" ", 1)[0] for e in res.errors)
        if res.errors:
            self.results.notes.append(
                f"{bench} run {run}: {len(res.errors):,} errors: {dict(kinds)}"
            )
        self.check(run, bench, sent, res.ok_total, tenant_id)
        p99 = res.percentile(99) * 1000
        log(f"  {bench}: {res.rate:,.0f} req/s, p99 {p99:.1f} ms, {len(res.errors)} errors")
        return res

    def single(self, run: int) -> None:
        cfg, r = self.cfg, self.results
        tenant_id, pks, _ = self.tenant("inserts", key=False)
        with self.measured("raw INSERTs", None):
            raw = loads.raw_inserts(
                self.url, tenant_id, pks, cfg.concurrency, cfg.warmup, cfg.duration, 500 + run
            )
        r.raw.add(raw.rate)
        r.raw_p50.add(raw.percentile(50))
        r.raw_p99.add(raw.percentile(99))
        self.check(run, "raw INSERTs", raw.ok_total, raw.ok_total, tenant_id)
        log(f"  ceiling (a): {raw.rate:,.0f} rows/s, p99 {raw.percentile(99) * 1000:.1f} ms")

        api = self.single_api(run, "single records")
        r.single.add(api.rate)
        r.single_p50.add(api.percentile(50))
        r.single_p99.add(api.percentile(99))
        r.single_errors.append(len(api.errors))

        with self.measured("bare FastAPI", self.bare):
            url = f"{self.bare_base}/v1/events"
            bare = single_posts(
                url, None, cfg.concurrency, cfg.warmup, cfg.duration, 7, self.client
            )
        r.bare.add(bare.rate)
        r.bare_p99.add(bare.percentile(99))
        log(f"  ceiling (b): {bare.rate:,.0f} req/s")

    def diagnose_pool(self) -> None:
        """The single-record load once more with a pool larger than the concurrency needs."""
        self.api.stop()
        env = {**self.env, "SEGMENTA_DB_POOL_SIZE": str(DIAGNOSTIC_POOL)}
        self.api, self.base = self.start("services.ingest.main:app", env)
        _, _, key = self.tenant("warmup", key=True)
        single_posts(f"{self.base}/v1/events", key, self.cfg.concurrency, 0, 2.0, 6, self.client)
        res = self.single_api(1, f"single records, pool {DIAGNOSTIC_POOL}")
        self.results.diagnostic = (
            res.rate,
            res.percentile(50),
            res.percentile(99),
            len(res.errors),
        )


@contextmanager
def servers(tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with scratch_database("segmenta_bench") as url, private_redis(tmp) as redis_url:
        migrate(sqlalchemy_url(url))
        env = service_env(
            url,
            redis_url,
            SEGMENTA_ENVIRONMENT="production",
            SEGMENTA_SECRET_KEY=secrets.token_urlsafe(32),
        )
        yield url, env


@contextmanager
def running_bench(cfg: Config, client: Client) -> Iterator[Bench]:
    """A ``Bench`` on fresh servers and its own scratch folder, closed afterwards."""
    with tempfile.TemporaryDirectory(prefix="segmenta-bench-") as tmpdir:
        tmp = Path(tmpdir)
        with servers(tmp) as (url, env):
            bench = Bench(cfg, url, env, tmp, client)
            try:
                yield bench
            finally:
                bench.close()


def run_single(cfg: Config, client: Client) -> None:
    """Only the single-record benchmark and its ceilings, printed; RESULTS.md is left alone."""
    with running_bench(cfg, client) as bench:
        log("warm-up")
        bench.warm_up(None)
        for run_no in range(1, cfg.repeats + 1):
            log(f"single-record run {run_no}/{cfg.repeats}")
            bench.single(run_no)
    r = bench.results
    log(
        f"single records: {r.single.show()} req/s = {r.single.median / r.raw.median:.0%}"
        f" of raw INSERTs ({r.raw.show()}/s), p50 {r.single_p50.show('.1f', 1000)} ms,"
        f" p99 {r.single_p99.show('.1f', 1000)} ms; bare FastAPI {r.bare.show()} req/s"
    )
    for note in r.notes:
        log(f"note: {note}")
    for name, shares in r.cpu.items():
        print(f"{name}: {shares[-1].describe()}")


def run(cfg: Config, command: str, out: Path, client: Client) -> None:
    with running_bench(cfg, client) as bench:
        machine = machine_info(bench.url)
        log("machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()))
        import_path = bench.tmp / "events.jsonl"
        log(f"writing a {cfg.import_rows:,}-row JSONL file")
        write_events_file(import_path, cfg.import_rows, seed=42, fmt="jsonl")
        import_rows = loads.read_rows(import_path)
        log("warm-up")
        bench.warm_up(import_path)
        for run_no in range(1, cfg.repeats + 1):
            log(f"bulk run {run_no}/{cfg.repeats}")
            bench.bulk(run_no, import_path, import_rows)
        for run_no in range(1, cfg.repeats + 1):
            log(f"single-record run {run_no}/{cfg.repeats}")
            bench.single(run_no)
        if any(bench.results.single_errors):
            log(f"diagnostic: single records with a pool of {DIAGNOSTIC_POOL}")
            bench.diagnose_pool()
    settings = {**asdict(cfg), "diagnostic_pool": DIAGNOSTIC_POOL}
    table = write_results(out, bench.results, machine, settings, command, client)
    print(table)
    for name, shares in bench.results.cpu.items():
        print(f"{name}: {shares[-1].describe()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument(
        "--out", type=Path, default=HERE / "RESULTS.md", help="where to write the results"
    )
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="HTTP client of the single-record load (see bench/http.py)",
    )
    parser.add_argument(
        "--single",
        action="store_true",
        help="only the single-record load and its ceilings, printed (RESULTS.md untouched)",
    )
    parser.add_argument("--repeats", type=int, help="runs of each benchmark (3; 1 with --quick)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else Config()
    if args.repeats:
        cfg = replace(cfg, repeats=args.repeats)
    if args.single:
        run_single(cfg, args.client)
        return 0
    command = "python -m bench.ingest" + (" --quick" if args.quick else "")
    if args.repeats:
        command += f" --repeats {args.repeats}"
    if args.client != "raw":
        command += f" --client {args.client}"
    run(cfg, command, args.out, args.client)
    return 0


if __name__ == "__main__":
    sys.exit(main())
