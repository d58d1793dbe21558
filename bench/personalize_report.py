"""Figures, verdicts and the ``personalize`` section of ``bench/RESULTS.md``."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.report import Check, Series, render_table
from bench.results_file import read_section, write_section
from segmenta.demo.storefront import ORACLE, UNIFORM_TRUTH, Tastes
from segmenta.demo.storefront_shop import Simulation

TAIL = 0.25  # "the last quarter of the visits"
ORACLE_SHARE = 0.85
POLICIES = [("bandit", "home"), ("uniform random", "lucky"), ("best static", "best")]


@dataclass
class SpeedResults:
    offers: Series = field(default_factory=Series)
    offers_p50: Series = field(default_factory=Series)
    offers_p99: Series = field(default_factory=Series)
    bare: Series = field(default_factory=Series)
    bare_p99: Series = field(default_factory=Series)
    drain_s: Series = field(default_factory=Series)
    copy: Series = field(default_factory=Series)
    feedback: Series = field(default_factory=Series)
    lag_p50: Series = field(default_factory=Series)
    lag_p95: Series = field(default_factory=Series)
    lag_rate: Series = field(default_factory=Series)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cpu: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Quality:
    seed: int
    held_out: bool
    tastes: Tastes
    run: Simulation

    def ratio(self) -> float:
        tally = self.run.tally
        return float(tally.rate("home", TAIL) / tally.rate(ORACLE, TAIL))

    def covered(self, estimator: str) -> bool:
        est, truth = self.run.ope[estimator], self.truth()
        return bool(est) and est["ci_low"] <= truth <= est["ci_high"]

    def truth(self) -> float:
        return float(self.run.tally.rate(UNIFORM_TRUTH, expected=True))

    def ok(self) -> bool:
        return self.ratio() >= ORACLE_SHARE and self.covered("ips") and self.covered("snips")

    def summary(self) -> str:
        t = self.run.tally
        rates = ", ".join(f"{n} {t.rate(p, TAIL):.2%}" for n, p in POLICIES)
        return (
            f"last quarter: {rates}, oracle {t.rate(ORACLE, TAIL):.2%}; bandit/oracle "
            f"{self.ratio():.0%}; uniform truth {self.truth():.2%}, SNIPS "
            f"{self.run.ope['snips']['estimate']:.2%}; {self.run.seconds:.0f} s; "
            f"{self.run.lags.describe()}"
        )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _ratio(ours: Series, ceiling: Series) -> float:
    return ours.median / ceiling.median if ceiling.median else float("nan")


def speed_rows(r: SpeedResults, cfg: Any) -> list[list[str]]:
    rps, p99 = _ratio(r.offers, r.bare), _ratio(r.offers_p99, r.bare_p99)
    fb = _ratio(r.feedback, r.copy)
    return [
        [
            f"`GET /v1/offers/{{id}}`, {cfg.concurrency} connections, {cfg.duration:.0f} s",
            f"{r.offers.show()} req/s; p50 {r.offers_p50.show('.1f', 1e3)} ms, "
            f"p99 {r.offers_p99.show('.1f', 1e3)} ms",
            f"{r.bare.show()} req/s; p99 {r.bare_p99.show('.1f', 1e3)} ms",
            f"{rps:.0%} of req/s; p99 {p99:.2f} x",
            "≥ 60%; p99 ≤ 1.5 x",
            _verdict(rps >= 0.6 and p99 <= 1.5),
        ],
        [
            f"`POST /v1/feedback`, {cfg.batch:,}-event batches, {cfg.threads} clients, "
            f"{cfg.feedback_rows:,} rows",
            f"{r.feedback.show()} rows/s",
            f"{r.copy.show()} rows/s (COPY of the same rows)",
            f"{fb:.0%}",
            "≥ 25%",
            _verdict(fb >= 0.25),
        ],
        [
            f"learning lag, conversions at {cfg.lag_rate} events/s for {cfg.lag_seconds:.0f} s",
            f"p95 {r.lag_p95.show('.2f')} s; p50 {r.lag_p50.show('.2f')} s; "
            f"sent at {r.lag_rate.show()} events/s",
            "-",
            "-",
            "p95 ≤ 2 s",
            _verdict(r.lag_p95.median <= 2.0),
        ],
    ]


def quality_rows(q: Quality) -> list[list[str]]:
    t = q.run.tally
    rows = [
        [
            name,
            f"{t.rate(p):.2%}",
            f"{t.rate(p, TAIL):.2%}",
            f"{t.rate(p, expected=True):.2%}",
            f"{t.rate(p, TAIL, expected=True):.2%}",
        ]
        for name, p in [*POLICIES, ("per-type oracle", ORACLE)]
    ]
    return rows


def ope_rows(q: Quality) -> list[list[str]]:
    ope = q.run.ope
    return [
        [
            name,
            f"{ope[name]['estimate']:.2%}",
            f"{ope[name]['ci_low']:.2%} - {ope[name]['ci_high']:.2%}",
            "yes" if q.covered(name) else "no",
        ]
        for name in ("ips", "snips", "dr")
        if ope.get(name)
    ]


def quality_section(sims: list[Quality], cfg: Any) -> list[str]:
    lines = ["## Simulated storefront (quality)", ""]
    lines.append(
        f"{cfg.visits:,} visits per taste matrix by {cfg.sim_customers:,} customers of 4 "
        "behaviour types (6 offers; rates and shares generated from the seed by "
        "`segmenta.demo.storefront.Tastes.generate`). Every visit asks three placements "
        "through the API: `home` (bandit, default 5% exploration), `lucky` (strategy "
        "random), `best` (static, the offer with the best population-wide rate); the "
        "oracle shows each type its best "
        "offer. The same uniform draw decides every policy's conversion in a visit. "
        "*Realised*: conversions per visit; *true*: mean true rate of the offers shown."
    )
    header = [
        "seed",
        "bandit / oracle, last quarter",
        "target",
        "OPE covers truth",
        "feedback learnt, p95",
        "visits took",
        "result",
    ]
    summary = [
        [
            f"{q.seed}" + (" (held out)" if q.held_out else ""),
            f"{q.ratio():.1%}",
            f"≥ {ORACLE_SHARE:.0%}",
            f"IPS {'yes' if q.covered('ips') else 'no'}, "
            f"SNIPS {'yes' if q.covered('snips') else 'no'}, "
            f"DR {'yes' if q.covered('dr') else 'no'}",
            f"{q.run.lags.learnt[1]:.2f} s",
            f"{q.run.seconds:.0f} s",
            _verdict(q.ok()),
        ]
        for q in sims
    ]
    lines += ["", render_table(header, summary), ""]
    for q in sims:
        lines += [f"### Tastes seed {q.seed}" + (" (held out)" if q.held_out else ""), ""]
        head = [
            "policy",
            "realised, all",
            "realised, last quarter",
            "true, all",
            "true, last quarter",
        ]
        lines += [render_table(head, quality_rows(q)), ""]
        lines += [f"Behind the visits: {q.run.lags.describe()}.", ""]
        warning = f"; {q.run.ope['warning']}" if q.run.ope.get("warning") else ""
        lines.append(
            f"Off-policy estimate of the uniform policy from the bandit's own log "
            f"({q.run.ope['rows']:,} decisions, effective sample size "
            f"{q.run.ope['ess']:,.0f}{warning})"
            f"; the uniform policy's true rate over these visits: {q.truth():.2%}."
        )
        lines += [
            "",
            render_table(["estimator", "estimate", "95% interval", "covers"], ope_rows(q)),
            "",
        ]
    return lines


QUALITY_HEADING = "## Simulated storefront (quality)"
EARLIER = "From the last full run"


def _earlier_quality(out: Path) -> list[str]:
    """The quality part of the section as the last full run wrote it (``--skip-quality``)."""
    earlier = read_section(out, "personalize") or ""
    if QUALITY_HEADING not in earlier:
        return []
    when = re.search(r"Machine: date ([^;]+);", earlier)
    part = earlier[earlier.index(QUALITY_HEADING) :].splitlines()
    if any(line.startswith(EARLIER) for line in part[:3]):  # kept by an earlier speed run
        return part
    note = f"{EARLIER} ({when.group(1) if when else 'date not recorded'}); the "
    note += "speed figures above come from a later run with `--skip-quality`."
    return [part[0], "", note, *part[1:]]


def write_report(
    out: Path,
    machine: dict[str, str],
    cfg: Any,
    command: str,
    r: SpeedResults,
    sims: list[Quality],
    with_speed: bool,
) -> str:
    lines = ["# Personalize benchmarks", "", f"`{command}`; settings: `{asdict(cfg)}`.", ""]
    lines += ["Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()) + ".", ""]
    if with_speed:
        header = [
            "Benchmark",
            "Ours: median (min-max)",
            "Raw limit: median",
            "Ratio",
            "Target",
            "Result",
        ]
        lines += ["## Speed", "", render_table(header, speed_rows(r, cfg)), ""]
        lines.append(
            f"Decision log: drained to Postgres {r.drain_s.show('.1f')} s after each "
            "offers run ended."
        )
        checks = [
            [
                str(c.run),
                c.bench,
                f"{c.sent:,}",
                f"{c.acknowledged:,}",
                f"{c.stored:,}",
                _verdict(c.ok),
            ]
            for c in r.checks
        ]
        lines += [
            "",
            render_table(
                ["run", "check", "sent", "acknowledged", "stored / learnt", "result"], checks
            ),
            "",
        ]
        lines += [f"* CPU, {bench}: {shares[-1]}" for bench, shares in r.cpu.items()]
        lines += [f"* note: {n}" for n in r.notes]
        lines.append("")
    lines += quality_section(sims, cfg) if sims else _earlier_quality(out)
    markdown = "\n".join(lines)
    write_section(out, "personalize", markdown)
    return markdown
