"""The personalize service next to its raw limits, and the bandit on a simulated storefront:
``python -m bench.personalize [--quick]``.

See ``bench/README.md`` ("Personalize benchmarks") for what each figure measures; the
results go to the ``personalize`` section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from redis import Redis
from sqlalchemy import Engine, text

from bench.ingest import RATE_LIMIT, log, servers
from bench.personalize_load import (
    Lag,
    copy_feedback,
    feedback_events,
    learning_lag,
    logged_decisions,
    offer_gets,
    post_feedback,
)
from bench.personalize_report import Quality, SpeedResults, write_report
from bench.report import Check
from bench.servers import CpuMeter, machine_info, postmaster_pid, start_uvicorn, wait_for_quiet
from segmenta.demo.storefront import Population, Tastes
from segmenta.demo.storefront_shop import Shop, simulate
from services.personalize.cache import placement_key
from shared.auth import create_api_key
from shared.db import create_db_engine, session_scope
from shared.settings import PostgresSettings
from tests.support.servers import Process, sqlalchemy_url, start_worker

HERE = Path(__file__).resolve().parent
STRATEGIES = {"home": "bandit", "lucky": "random", "best": "static"}


@dataclass(frozen=True)
class Config:
    repeats: int = 3
    concurrency: int = 50
    warmup: float = 2.0
    duration: float = 15.0
    customers: int = 10_000
    feedback_rows: int = 25_000
    batch: int = 2_500
    threads: int = 4
    lag_rate: int = 500
    lag_seconds: float = 20.0
    visits: int = 20_000
    sim_customers: int = 2_000
    seeds: tuple[int, ...] = (1, 2, 3)
    held_out: int = 4_242  # a taste matrix nobody looked at while the bandit was tuned


QUICK = Config(
    repeats=1,
    warmup=1.0,
    duration=4.0,
    customers=2_000,
    feedback_rows=5_000,
    lag_seconds=6.0,
    visits=4_000,
    seeds=(1,),
)


@dataclass
class Stack:
    url: str
    redis_url: str
    engine: Engine
    ingest: str
    personalize: str
    bare: str
    api_pid: int
    bare_pid: int
    tmp: Path
    tenants: int = 0
    cpu: dict[str, list[str]] = field(default_factory=dict)

    def shop(self, label: str) -> Shop:
        self.tenants += 1
        name = f"bench-{label}-{self.tenants}-{secrets.token_hex(3)}"
        keys = []
        with session_scope(self.engine) as session:
            for scopes in (["admin"], ["offers:read", "feedback:write"], ["ingest:write"]):
                issued = create_api_key(
                    session,
                    client="bench",
                    scopes=scopes,
                    tenant=name,
                    rate_limit_per_minute=RATE_LIMIT,
                )
                keys.append(issued.key)
        with self.engine.connect() as conn:
            tenant_id = conn.execute(
                text("SELECT id FROM tenant WHERE name = :n"), {"n": name}
            ).scalar_one()
        admin, storefront, ingest = keys
        return Shop(
            self.personalize, self.ingest, admin, storefront, ingest, int(tenant_id), self.engine
        )

    @contextmanager
    def measured(self, bench: str, pid: int | None) -> Iterator[None]:
        database, postmaster = self.url.rsplit("/", 1)[1], postmaster_pid(self.url)
        wait_for_quiet(database, postmaster)
        with CpuMeter(pid, database, postmaster) as meter:
            yield
        self.cpu.setdefault(bench, []).append(meter.share.describe())


@contextmanager
def stack(tmp: Path) -> Iterator[Stack]:
    """Ingest and personalize APIs, the worker, beat, the relay and the bare app."""
    with servers(tmp) as (url, env):
        redis_url = env["SEGMENTA_REDIS_URL"]
        procs: list[Process] = []
        try:
            ingest, ingest_base = start_uvicorn("services.ingest.main:app", env, tmp / "i.log")
            api, base = start_uvicorn("services.personalize.main:app", env, tmp / "p.log")
            bare, bare_base = start_uvicorn("bench.personalize_bare:app", env, tmp / "b.log")
            procs += [ingest, api, bare]
            procs.append(
                start_worker("services.personalize.worker", "personalize", env, tmp / "w.log")
            )
            beat = [sys.executable, "-m", "celery", "-A", "services.personalize.worker", "beat"]
            beat += ["--schedule", str(tmp / "beat-schedule"), "--loglevel", "WARNING"]
            procs.append(Process(beat, env, tmp / "beat.log"))
            procs.append(Process([sys.executable, "-m", "shared.relay"], env, tmp / "r.log"))
            engine = create_db_engine(PostgresSettings(database_url=sqlalchemy_url(url)))
            yield Stack(
                url, redis_url, engine, ingest_base, base, bare_base, api.proc.pid,
                bare.proc.pid, tmp,
            )  # fmt: skip
            engine.dispose()
        finally:
            for process in reversed(procs):
                process.stop()


def count_decisions(url: str, tenant_id: int) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM decision WHERE tenant_id = %s", (tenant_id,))
        return int(row.fetchone()[0])  # type: ignore[index]


def settled_count(
    url: str, tenant_id: int, at_least: int, timeout: float = 180
) -> tuple[int, float]:
    """The tenant's decision rows once the drain has them all (or stopped growing), and
    the seconds it took."""
    started = time.monotonic()
    last, still_since = -1, time.monotonic()
    while time.monotonic() - started < timeout:
        now = count_decisions(url, tenant_id)
        if now >= at_least:
            return now, time.monotonic() - started
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since > 15:
            break
        time.sleep(0.25)
    return count_decisions(url, tenant_id), time.monotonic() - started


def speed(s: Stack, cfg: Config, r: SpeedResults) -> None:
    shop = s.shop("speed")
    tastes = Tastes.generate(1)
    population = Population.draw(tastes, cfg.customers, 1, prefix="spd")
    log(f"speed shop: {cfg.customers:,} customers through ingest, segments, offers")
    simulate(shop, tastes, population, {"home": "bandit"}, 200, 1)
    ids = population.customer_ids
    redis = Redis.from_url(s.redis_url)
    snapshot = redis.get(placement_key(shop.tenant_id, "home"))
    redis.set("bench:bare:home", snapshot if isinstance(snapshot, bytes) else b"")
    offer_gets(s.bare, None, ids, cfg.concurrency, 0, 2.0, 3)
    offer_gets(s.personalize, shop.storefront_key, ids, cfg.concurrency, 0, 2.0, 4)
    for run in range(1, cfg.repeats + 1):
        with s.measured("bare GET + one Redis GET", s.bare_pid):
            bare = offer_gets(s.bare, None, ids, cfg.concurrency, cfg.warmup, cfg.duration, run)
        r.bare.add(bare.rate)
        r.bare_p99.add(bare.percentile(99))
        before, _ = settled_count(s.url, shop.tenant_id, 10**12, timeout=5)
        with s.measured("GET /v1/offers", s.api_pid):
            api = offer_gets(
                s.personalize, shop.storefront_key, ids, cfg.concurrency, cfg.warmup,
                cfg.duration, 100 + run,
            )  # fmt: skip
        r.offers.add(api.rate)
        r.offers_p50.add(api.percentile(50))
        r.offers_p99.add(api.percentile(99))
        after, drain_s = settled_count(s.url, shop.tenant_id, before + api.ok_total)
        r.drain_s.add(drain_s)
        sent = api.ok_total + len(api.errors)
        r.checks.append(Check(run, "decisions logged", sent, api.ok_total, after - before))
        if api.errors:
            r.notes.append(f"offers run {run}: {len(api.errors):,} errors, e.g. {api.errors[0]}")
        log(
            f"  run {run}: bare {bare.rate:,.0f} req/s p99 {bare.percentile(99) * 1e3:.1f} ms; "
            f"offers {api.rate:,.0f} req/s p99 {api.percentile(99) * 1e3:.1f} ms; "
            f"{api.ok_total:,} answered, {after - before:,} logged ({drain_s:.1f} s to drain)"
        )
    feedback(s, cfg, r, shop)
    redis.close()


def feedback(s: Stack, cfg: Config, r: SpeedResults, shop: Shop) -> None:
    lag_rows = int(cfg.lag_rate * cfg.lag_seconds)
    decisions = logged_decisions(
        s.url, shop.tenant_id, max(cfg.feedback_rows, lag_rows * cfg.repeats)
    )
    rows = decisions[: cfg.feedback_rows]
    for run in range(1, cfg.repeats + 1):
        with s.measured("raw COPY into feedback", None):
            seconds = copy_feedback(s.url, shop.tenant_id, rows, f"copy{run}")
        r.copy.add(len(rows) / seconds)
        events = feedback_events(rows, f"api{run}", "click")
        bodies = [_dumps(events[i : i + cfg.batch]) for i in range(0, len(events), cfg.batch)]
        with s.measured("POST /v1/feedback", s.api_pid):
            posted = post_feedback(s.personalize, shop.storefront_key, bodies, cfg.threads)
        r.feedback.add(len(rows) / posted.seconds)
        r.checks.append(
            Check(
                run, "feedback stored", len(rows), posted.accepted, _stored(s, shop, f"api{run}-%")
            )
        )
        r.notes += [f"feedback run {run}: {f}" for f in posted.failures[:2]]
        log(
            f"  feedback run {run}: COPY {len(rows) / seconds:,.0f} rows/s, "
            f"API {len(rows) / posted.seconds:,.0f} rows/s"
        )
    for run in range(1, cfg.repeats + 1):
        chunk = decisions[(run - 1) * lag_rows : run * lag_rows]
        wait_for_quiet(s.url.rsplit("/", 1)[1], postmaster_pid(s.url))
        lag = learning_lag(
            s.personalize, shop.storefront_key, s.redis_url, shop.tenant_id, chunk,
            cfg.lag_rate, run,
        )  # fmt: skip
        _lag(r, lag, run)


def _lag(r: SpeedResults, lag: Lag, run: int) -> None:
    ordered = sorted(lag.lags)
    p95 = (
        ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        if ordered
        else float("inf")
    )
    p50 = ordered[len(ordered) // 2] if ordered else float("inf")
    r.lag_p95.add(p95)
    r.lag_p50.add(p50)
    r.lag_rate.add(lag.rate)
    r.checks.append(Check(run, "conversions learnt", lag.sent, lag.accepted, int(lag.learnt)))
    log(
        f"  lag run {run}: {lag.rate:,.0f} events/s, p50 {p50:.2f} s, p95 {p95:.2f} s, "
        f"learnt {lag.learnt:,.0f}/{lag.accepted:,}"
    )


def _stored(s: Stack, shop: Shop, pattern: str) -> int:
    with psycopg.connect(s.url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM feedback WHERE tenant_id = %s AND event_id LIKE %s",
            (shop.tenant_id, pattern),
        )
        return int(row.fetchone()[0])  # type: ignore[index]


def _dumps(events: list[dict[str, object]]) -> bytes:
    import orjson

    return orjson.dumps(events)


def quality(s: Stack, cfg: Config) -> list[Quality]:
    results = []
    for seed in (*cfg.seeds, cfg.held_out):
        log(f"simulated storefront, tastes seed {seed}: {cfg.visits:,} visits")
        tastes = Tastes.generate(seed)
        population = Population.draw(tastes, cfg.sim_customers, seed, prefix=f"q{seed}")
        run = simulate(
            s.shop(f"sim{seed}"), tastes, population, STRATEGIES, cfg.visits, seed, "home"
        )
        results.append(Quality(seed, seed == cfg.held_out, tastes, run))
        log("  " + results[-1].summary())
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.personalize", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--repeats", type=int, help="runs of each speed benchmark (3; 1 quick)")
    parser.add_argument("--skip-speed", action="store_true", help="only the simulated storefront")
    parser.add_argument(
        "--skip-quality",
        action="store_true",
        help="only the speed benchmarks (the storefront's results of the last full run are kept)",
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else Config()
    if args.repeats:
        cfg = replace(cfg, repeats=args.repeats)
    command = "python -m bench.personalize" + (" --quick" if args.quick else "")
    speed_results = SpeedResults()
    with tempfile.TemporaryDirectory(prefix="segmenta-bench-") as tmpdir, stack(Path(tmpdir)) as s:
        machine = machine_info(s.url)
        log("machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()))
        if not args.skip_speed:
            speed(s, cfg, speed_results)
        sims = [] if args.skip_quality else quality(s, cfg)
        speed_results.cpu = s.cpu
    print(write_report(args.out, machine, cfg, command, speed_results, sims, not args.skip_speed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
