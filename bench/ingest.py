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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import Engine

from bench import loads
from bench.http import Client, single_posts
from bench.report import Check, Results, write_results
from bench.servers import CpuMeter, machine_info, start_uvicorn
from segmenta.demo.generate import write_events_file
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
    def __init__(
        self, cfg: Config, url: str, engine: Engine, api: Process, base: str, client: Client
    ) -> None:
        self.cfg, self.url, self.engine, self.client = cfg, url, engine, client
        self.api, self.base = api, base
        self.results = Results()
        self.tenants = 0

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

    def check(self, run: int, bench: str, sent: int, acknowledged: int, tenant_id: int) -> None:
        stored = loads.count_events(self.url, tenant_id)
        check = Check(run, bench, sent, acknowledged, stored)
        self.results.checks.append(check)
        if not check.ok:
            log(f"  !! {bench}: sent {sent}, acknowledged {acknowledged}, stored {stored}")

    def warm_up(self, import_path: Path) -> None:
        _, _, key = self.tenant("warmup", key=True)
        prepared = loads.prepare_events(5 * self.cfg.batch, seed=9, batch=self.cfg.batch)
        loads.post_batches(self.base, key, prepared.bodies, self.cfg.threads)
        small = import_path.with_name("warmup.jsonl")
        write_events_file(small, 20_000, seed=8, fmt="jsonl")
        loads.import_file(self.base, key, small, self.api.proc.pid)
        single_posts(
            f"{self.base}/v1/events", key, self.cfg.concurrency, 0, 2.0, 7, self.client
        )

    def bulk(self, run: int, import_path: Path, import_rows: list[loads.EventRow]) -> None:
        cfg, r = self.cfg, self.results
        prepared = loads.prepare_events(cfg.rows, seed=100 + run, batch=cfg.batch)

        tenant_id, pks, _ = self.tenant("copy", key=False)
        seconds = loads.copy_ceiling(self.url, loads.copy_blocks(prepared.rows, tenant_id, pks))
        r.copy_a.add(cfg.rows / seconds)
        self.check(run, "raw COPY (A)", cfg.rows, cfg.rows, tenant_id)
        log(f"  ceiling A: COPY {cfg.rows:,} rows in {seconds:.1f} s")

        tenant_id, _, key = self.tenant("batches", key=True)
        with CpuMeter(self.api.proc.pid) as cpu:
            batches = loads.post_batches(self.base, key, prepared.bodies, cfg.threads)
        r.batches.add(cfg.rows / batches.seconds)
        r.cpu["batches"] = cpu.share.describe()
        r.notes += [f"batch run {run}: {f}" for f in batches.failures[:3]]
        self.check(run, "batches", cfg.rows, batches.accepted, tenant_id)
        log(f"  batches: {cfg.rows:,} rows in {batches.seconds:.1f} s")
        del prepared

        tenant_id, pks, _ = self.tenant("copy-import", key=False)
        seconds = loads.copy_ceiling(self.url, loads.copy_blocks(import_rows, tenant_id, pks))
        r.copy_import.add(cfg.import_rows / seconds)
        self.check(run, "raw COPY (import rows)", cfg.import_rows, cfg.import_rows, tenant_id)
        log(f"  ceiling: COPY {cfg.import_rows:,} rows in {seconds:.1f} s")

        tenant_id, _, key = self.tenant("import", key=True)
        with CpuMeter(self.api.proc.pid) as cpu:
            result = loads.import_file(self.base, key, import_path, self.api.proc.pid)
        r.cpu["import"] = cpu.share.describe()
        if result.failure:
            r.notes.append(f"import run {run} failed: {result.failure}")
        r.imports.add(cfg.import_rows / result.seconds if not result.failure else 0.0)
        r.rss.append((result.rss.start, result.rss.peak, result.rss.end))
        self.check(run, "import", cfg.import_rows, result.accepted, tenant_id)
        log(
            f"  import: {cfg.import_rows:,} rows in {result.seconds:.1f} s; RSS MiB "
            f"{result.rss.start >> 20}/{result.rss.peak >> 20}/{result.rss.end >> 20}"
        )

    def single(self, run: int, bare_base: str, bare: Process) -> None:
        cfg, r = self.cfg, self.results
        tenant_id, pks, _ = self.tenant("inserts", key=False)
        with CpuMeter(None) as cpu:
            raw = loads.raw_inserts(
                self.url, tenant_id, pks, cfg.concurrency, cfg.warmup, cfg.duration, 500 + run
            )
        r.cpu["raw inserts"] = cpu.share.describe()
        r.raw.add(raw.rate)
        r.raw_p50.add(raw.percentile(50))
        r.raw_p99.add(raw.percentile(99))
        self.check(run, "raw per-commit INSERTs", raw.ok_total, raw.ok_total, tenant_id)
        log(f"  ceiling (a): {raw.rate:,.0f} rows/s, p99 {raw.percentile(99) * 1000:.1f} ms")

        tenant_id, _, key = self.tenant("single", key=True)
        with CpuMeter(self.api.proc.pid) as cpu:
            api = single_posts(
                f"{self.base}/v1/events", key, cfg.concurrency, cfg.warmup, cfg.duration, 600 + run, self.client
            )
        r.cpu["single records"] = cpu.share.describe()
        r.single.add(api.rate)
        r.single_p50.add(api.percentile(50))
        r.single_p99.add(api.percentile(99))
        sent = api.ok_total + len(api.errors)
        r.notes += [f"single run {run}: {e}" for e in api.errors[:3]]
        self.check(run, "single records", sent, api.ok_total, tenant_id)
        log(f"  single: {api.rate:,.0f} req/s, p99 {api.percentile(99) * 1000:.1f} ms")

        with CpuMeter(bare.proc.pid) as cpu:
            ceiling = single_posts(
                f"{bare_base}/v1/events", None, cfg.concurrency, cfg.warmup, cfg.duration, 700, self.client
            )
        r.cpu["bare FastAPI"] = cpu.share.describe()
        r.bare.add(ceiling.rate)
        r.bare_p99.add(ceiling.percentile(99))
        log(f"  ceiling (b): {ceiling.rate:,.0f} req/s")


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


def run(cfg: Config, command: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="segmenta-bench-") as tmpdir:
        tmp = Path(tmpdir)
        with servers(tmp) as (url, env):
            machine = machine_info(url)
            log("machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()))
            import_path = tmp / "events.jsonl"
            log(f"writing a {cfg.import_rows:,}-row JSONL file")
            write_events_file(import_path, cfg.import_rows, seed=42, fmt="jsonl")
            import_rows = loads.read_rows(import_path)
            engine = create_db_engine(PostgresSettings(database_url=sqlalchemy_url(url)))
            api, base = start_uvicorn("services.ingest.main:app", env, tmp / "api.log")
            bare, bare_base = start_uvicorn("bench.bare_app:app", env, tmp / "bare.log")
            try:
                bench = Bench(cfg, url, engine, api, base)
                log("warm-up")
                bench.warm_up(import_path)
                for run_no in range(1, cfg.repeats + 1):
                    log(f"bulk run {run_no}/{cfg.repeats}")
                    bench.bulk(run_no, import_path, import_rows)
                for run_no in range(1, cfg.repeats + 1):
                    log(f"single-record run {run_no}/{cfg.repeats}")
                    bench.single(run_no, bare_base, bare)
            finally:
                bare.stop()
                api.stop()
                engine.dispose()
            settings = {k: v for k, v in asdict(cfg).items() if not isinstance(v, str)}
            table = write_results(out, bench.results, machine, settings, command)
            print(table)
            print("\n".join(f"{name}: {split}" for name, split in bench.results.cpu.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument(
        "--out", type=Path, default=HERE / "RESULTS.md", help="where to write the results"
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else Config()
    run(cfg, "python -m bench.ingest" + (" --quick" if args.quick else ""), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
