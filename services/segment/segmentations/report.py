"""A segmentation run as a report an analyst can hand on: one HTML page, rendered here.

One section per segment: name, size, value, the rule with its coverage and precision, the
profile in words, CLV with its uncertainty, and how it changed since the previous run.
Every text from the database is escaped; the page has no script. CLV spread comes from
the members' current scores, so it is given for the tenant's active run only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from services.segment.dashboard.colors import segment_color
from services.segment.segments.repository import segments_of_run, shop_currency
from services.segment.segments.schemas import SegmentPublic, segment_public

PROFILE_FEATURES = 5
MISSING = "n/a"
# As the training counts it: a customer who never ordered is worth 0 (no P(alive) either),
# one whose value was withheld (too little history: a P(alive) but no CLV) is left out.
_CLV_SPREAD = text(
    """
    WITH v AS (
        SELECT m.segment_key AS key,
               CASE WHEN s.clv IS NOT NULL THEN s.clv WHEN s.p_alive IS NULL THEN 0 END AS clv
        FROM segment_membership m LEFT JOIN customer_score s ON s.customer_pk = m.customer_pk
        WHERE m.tenant_id = :tenant
    )
    SELECT key, count(clv) AS n, avg(clv) AS mean, stddev_samp(clv) AS sd,
           percentile_cont(0.1) WITHIN GROUP (ORDER BY clv) AS p10,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY clv) AS p90
    FROM v WHERE clv IS NOT NULL GROUP BY key
    """
)
STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1d2939;
max-width:960px;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin:0}
.meta{color:#667085} section{border:1px solid #e4e7ec;border-radius:8px;padding:1rem 1.2rem;
margin:1rem 0;break-inside:avoid} .swatch{display:inline-block;width:.9rem;height:.9rem;
border-radius:3px;margin-right:.5rem;vertical-align:-.1rem}
dl{display:grid;grid-template-columns:11rem 1fr;gap:.3rem 1rem;margin:.8rem 0 0}
dt{color:#667085} dd{margin:0} .warn{color:#b54708}
"""


@dataclass(frozen=True)
class ClvSpread:
    n: int
    mean: float
    sd: float | None
    p10: float | None
    p90: float | None


def _money(value: float | None, currency: str) -> str:
    return MISSING if value is None else f"{currency} {value:,.0f}"


def _share(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0%}"


def _figure(value: float) -> str:
    """A figure for a sentence: whole numbers from 100, else two significant digits."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2g}" if abs(value) < 10 else f"{value:.1f}"


def _spreads(session: Session, tenant_id: int) -> dict[str, ClvSpread]:
    rows = session.execute(_CLV_SPREAD, {"tenant": tenant_id}).mappings()
    return {
        row["key"]: ClvSpread(
            int(row["n"]),
            float(row["mean"]),
            None if row["sd"] is None else float(row["sd"]),
            None if row["p10"] is None else float(row["p10"]),
            None if row["p90"] is None else float(row["p90"]),
        )
        for row in rows
    }


def _clv_text(segment: SegmentPublic, spread: ClvSpread | None, currency: str) -> str:
    stats = segment.stats
    if stats.mean_clv is None:
        return escape(stats.clv_note or "not scored")
    if spread is None or spread.n < 2 or spread.sd is None:
        return f"mean {_money(stats.mean_clv, currency)}"
    margin = 1.96 * spread.sd / math.sqrt(spread.n)
    words = (
        f"mean {_money(spread.mean, currency)} ± {margin:,.0f} (95% interval of the mean, "
        f"{spread.n:,} customers); 80% of them between {_money(spread.p10, currency)} and "
        f"{_money(spread.p90, currency)}"
    )
    if stats.clv_withheld_share:
        words += f"; {stats.clv_withheld_share:.0%} without a value (too little history)"
    return escape(words)


def _profile_text(segment: SegmentPublic, currency: str) -> str:
    features = [f for f in segment.profile if f.mean is not None][:PROFILE_FEATURES]
    parts = []
    for f in features:
        if f.mean is None or f.population_mean is None:
            continue
        direction = "higher" if f.mean > f.population_mean else "lower"
        unit = f" {currency}" if f.unit == "money" else ""
        parts.append(
            f"{f.label or f.name} {direction} than average "
            f"({_figure(f.mean)}{unit} vs {_figure(f.population_mean)}{unit})"
        )
    return escape("; ".join(parts) or "close to the average on every feature")


def _change_text(
    segment: SegmentPublic, before: dict[str, SegmentPublic], previous: int | None
) -> str:
    if previous is None:
        return "first segmentation: nothing to compare with"
    old = before.get(segment.key)
    if old is None:
        return f"new since run {previous}"
    delta = segment.size - old.size
    words = f"{old.size:,} → {segment.size:,} customers ({delta:+,}) since run {previous}"
    if old.name != segment.name:
        words += f"; was named {old.name}"
    if segment.stats.jaccard_previous is not None:
        words += f"; {segment.stats.jaccard_previous:.0%} overlap of members"
    return escape(words)


def _section(
    segment: SegmentPublic,
    currency: str,
    spread: ClvSpread | None,
    before: dict[str, SegmentPublic],
    previous: int | None,
) -> str:
    rules, stats = segment.rules, segment.stats
    rule = escape(rules.text or "no rule")
    measured = f"catches {_share(rules.coverage)} of the segment; " + (
        "precision not recorded"
        if rules.precision is None
        else f"{_share(rules.precision)} of those it catches belong"
    )
    if rules.low_coverage:
        measured += " — a partial description only"
    rows = [
        ("Size", f"{segment.size:,} customers ({_share(segment.share)} of all)"),
        (
            "Value",
            f"{_share(stats.revenue_share)} of revenue "
            f"(mean {_money(stats.mean_revenue, currency)}); "
            f"{_share(stats.clv_share)} of lifetime value",
        ),
        ("Rule", f"{rule}<br><span class=meta>{escape(measured)}</span>"),
        ("Profile", _profile_text(segment, currency)),
        (f"CLV ({escape(currency)})", _clv_text(segment, spread, currency)),
        ("Since the previous run", _change_text(segment, before, previous)),
    ]
    body = "".join(
        f"<dt>{escape(name) if not name.startswith('CLV') else name}</dt><dd>{value}</dd>"
        for name, value in rows
    )
    swatch = f'<span class=swatch style="background:{segment_color(segment.key)}"></span>'
    description = escape(segment.description or "")
    return (
        f"<section><h2>{swatch}{escape(segment.name)} <span class=meta>({escape(segment.key)})"
        f"</span></h2><p class=meta>{description}</p><dl>{body}</dl></section>"
    )


def render_report(
    session: Session, *, tenant_id: int, run: dict[str, Any], default_currency: str
) -> str:
    """The report of ``run`` (a row of the segmentations repository, the tenant's)."""
    rows = segments_of_run(session, tenant_id=tenant_id, run_id=run["id"])
    total = sum(row.size for row in rows)
    currency = shop_currency(session, tenant_id=tenant_id) or default_currency
    segments = [segment_public(row, total, currency) for row in rows]
    metrics = run.get("metrics") or {}
    previous = metrics.get("previous_run_id")
    previous = int(previous) if isinstance(previous, int) else None
    before: dict[str, SegmentPublic] = {}
    if previous is not None:
        old_rows = segments_of_run(session, tenant_id=tenant_id, run_id=previous)
        old_total = sum(row.size for row in old_rows)
        before = {row.key: segment_public(row, old_total, currency) for row in old_rows}
    spreads = _spreads(session, tenant_id) if run.get("active") else {}
    finished = run.get("finished_at")
    header = (
        f"<h1>Segmentation run {run['id']}</h1><p class=meta>{escape(str(run['algorithm']))}, "
        f"{len(segments)} segments, {total:,} customers"
        f"{', finished ' + escape(finished.isoformat(timespec='minutes')) if finished else ''}"
        f"{' (active)' if run.get('active') else ''}; amounts in {escape(currency)}</p>"
    )
    if not run.get("active"):
        header += "<p class=warn>CLV intervals are given for the active segmentation only.</p>"
    sections = "".join(
        _section(s, currency, spreads.get(s.key), before, previous) for s in segments
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Segmentation run {run['id']}</title><style>{STYLE}</style></head>"
        f"<body>{header}{sections or '<p>No segments.</p>'}</body></html>"
    )
