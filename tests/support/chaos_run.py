"""One chaos run: the platform up, a shop set up, load, faults, drain, ledger, report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.db import create_db_engine
from shared.settings import PostgresSettings
from tests.support.chaos import Fault, RedisKill, running_platform
from tests.support.chaos_ledger import FaultResult, Stage, attribute, ledger, run_faults
from tests.support.chaos_load import KINDS, Client, Load, Sent, drained, open_shop, wait_for

RATES: dict[str, float] = {
    "orders": 4,
    "events": 4,
    "reviews": 2,
    "transcripts": 1,
    "offers": 4,
    "feedback": 2,
}


@dataclass
class ChaosReport:
    faults: list[FaultResult]
    stages: list[Stage]
    seen: dict[str, Sent]
    load_s: float
    drain_s: float | None
    gave_up: list[str]
    machine: dict[str, str]
    wiped_decisions: set[str] = field(default_factory=set)
    redis_kills: list[RedisKill] = field(default_factory=list)
    fallbacks: set[str] = field(default_factory=set)

    @property
    def decisions_lost_by_design(self) -> int:
        """Lost decisions that only Redis held: those in its stream when it lost its data,
        and those it answered but had not written to its append-only file when SIGKILLed
        (AOF `everysec`)."""
        answered = self.seen["offers"].accepted
        return sum(
            1
            for ident in self.stages[-1].lost
            if ident in self.wiped_decisions
            or (
                ident not in self.fallbacks
                and any(k.lost_by_design(ident, answered[ident]) for k in self.redis_kills)
            )
        )

    @property
    def lost_beyond_design(self) -> int:
        return self.lost - self.decisions_lost_by_design

    @property
    def lost(self) -> int:
        return sum(len(s.lost) for s in self.stages)

    @property
    def duplicated(self) -> int:
        return sum(len(s.duplicated) for s in self.stages)

    def markdown(self) -> str:
        lines = [
            "| fault | sent | accepted | non-2xx answers (retried) | lost | dead-lettered "
            "| recovery |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for f in self.faults:
            recovery = f"{f.recovery_s:.1f} s" if f.recovery_s is not None else "not recovered"
            lines.append(
                f"| {f.name} | {f.sent} | {f.accepted} | {f.refused} | {f.lost} "
                f"| {f.dead_lettered} | {recovery} |"
            )
        lines += [
            "",
            "| stage | accepted | lost | duplicated | dead-lettered | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for s in self.stages:
            lines.append(
                f"| {s.name} | {s.accepted} | {len(s.lost)} | {len(s.duplicated)} "
                f"| {s.dead_lettered} | {s.note} |"
            )
        lines += [
            "",
            "| requests | sent | accepted | gave up | non-2xx answers | p50 | p99 |",
            "|---|---:|---:|---:|---|---:|---:|",
        ]
        for kind, seen in self.seen.items():
            lat = sorted(seen.latencies) or [0.0]
            p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(seen.statuses.items())) or "-"
            lines.append(
                f"| {kind} | {seen.sent} | {len(seen.accepted)} | {seen.gave_up} | {statuses} "
                f"| {p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms |"
            )
        return "\n".join(lines)


def run_chaos(
    data: Path,
    faults: list[Fault],
    *,
    gap_s: float = 3,
    warmup_s: float = 5,
    drain_timeout_s: float = 240,
    rates: dict[str, float] | None = None,
    describe: Callable[[str], dict[str, str]] | None = None,
) -> ChaosReport:
    """``describe`` is asked about the machine (with the database's URL) while it runs."""
    with running_platform(data) as platform:
        engine = create_db_engine(PostgresSettings(database_url=platform.database_url))
        try:
            shop = open_shop(platform, engine)
            client = Client(platform, shop)
            load = Load(client, rates or RATES)
            started = time.monotonic()
            load.start()
            try:
                time.sleep(warmup_s)
                results = run_faults(platform, engine, load, faults, gap_s)
            finally:
                load.stop()
                client.close()
            load_s = time.monotonic() - started
            try:
                drain_s: float | None = wait_for(
                    lambda: drained(engine, platform.redis.url), drain_timeout_s, "the drain"
                )
            except TimeoutError:
                drain_s = None
            stages = ledger(engine, platform.redis.url, shop, client)
            attribute(engine, client, stages, results)
            seen = {kind: client.seen[kind] for kind in KINDS}
            machine = describe(platform.database_url.replace("+psycopg", "", 1)) if describe else {}
            return ChaosReport(
                results,
                stages,
                seen,
                load_s,
                drain_s,
                platform.gave_up,
                machine,
                wiped_decisions=platform.wiped_decisions,
                redis_kills=platform.redis_kills,
                fallbacks=client.fallbacks,
            )
        finally:
            engine.dispose()
