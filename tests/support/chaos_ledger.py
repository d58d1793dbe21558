"""RELIABILITY.md's ledger for every stage of the pipeline, and faults with recovery times.

Stages (what the client saw accepted, against what Postgres and Redis hold afterwards):

* review / transcript → exactly one analysis per model version (or a dead letter);
* order → counted once in its customer's features (``frequency`` equals the stored
  orders), features refreshed after it, and a membership under the active run;
* membership → personalize's cache holds the customer's current segment;
* feedback → stored, applied, and its conversions counted once in the placement's policy;
* offer answer → its decision logged in Postgres (and its shows counted once).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from sqlalchemy import Engine, text

from services.personalize.cache import customer_key, subject_hash
from services.segment.features.v1 import V1
from tests.support.chaos import Fault, Platform
from tests.support.chaos_load import KINDS, Client, Load, Shop, wait_for

FREQUENCY = V1.names.index("frequency") + 1  # a 1-based Postgres array index


@dataclass
class Stage:
    name: str
    accepted: int
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    dead_lettered: int = 0
    note: str = ""


def _rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def _texts(engine: Engine, shop: Shop, ids: list[str], kind: str) -> Stage:
    table, column = ("review", "review_id") if kind == "review" else ("transcript", "transcript_id")
    rows = _rows(
        engine,
        f"""
        SELECT s.{column}, count(a.id), count(DISTINCT a.model_version),
               EXISTS (SELECT 1 FROM dead_letter d WHERE d.subject_id = s.id
                       AND d.task_name = 'nlp.analyze_{kind}s')
        FROM {table} s LEFT JOIN text_analysis a ON a.source_kind = :k AND a.source_pk = s.id
        WHERE s.tenant_id = :t AND s.{column} = ANY(:ids) GROUP BY s.id
        """,
        k=kind,
        t=shop.tenant_id,
        ids=ids,
    )
    done = {r[0] for r in rows if r[1] > 0 or r[3]}
    stage = Stage(f"{kind} → one analysis per model version", len(ids))
    stage.lost = sorted(set(ids) - done)
    stage.duplicated = [r[0] for r in rows if r[1] > r[2]]
    stage.dead_lettered = sum(1 for r in rows if r[3])
    return stage


def _orders(engine: Engine, shop: Shop, ids: list[str]) -> Stage:
    rows = _rows(
        engine,
        f"""
        SELECT o.order_id, f.feature_values[{FREQUENCY}],
               (SELECT count(*) FROM orders x WHERE x.customer_pk = o.customer_pk),
               coalesce(f.updated_at >= o.received_at, false),
               coalesce(m.run_id = r.id, false),
               EXISTS (SELECT 1 FROM dead_letter d WHERE d.subject_id = o.customer_pk
                       AND d.task_name = 'segment.refresh_customers')
        FROM orders o
        LEFT JOIN customer_features f ON f.customer_pk = o.customer_pk AND f.feature_set = 'v1'
        LEFT JOIN segment_membership m ON m.customer_pk = o.customer_pk
        LEFT JOIN segmentation_run r ON r.tenant_id = o.tenant_id AND r.active
        WHERE o.tenant_id = :t AND o.order_id = ANY(:ids)
        """,
        t=shop.tenant_id,
        ids=ids,
    )
    stage = Stage("order → its customer's features and membership", len(ids))
    ok = {r[0] for r in rows if (r[1] == r[2] and r[3] and r[4]) or r[5]}
    stage.lost = sorted(set(ids) - ok - {r[0] for r in rows if r[1] is not None and r[1] > r[2]})
    stage.duplicated = [r[0] for r in rows if r[1] is not None and r[1] > r[2]]
    stage.dead_lettered = sum(1 for r in rows if r[5])
    return stage


def _cache(engine: Engine, redis_url: str, shop: Shop) -> Stage:
    rows = _rows(
        engine,
        "SELECT c.customer_id, m.segment_key FROM segment_membership m"
        " JOIN customer c ON c.id = m.customer_pk WHERE m.tenant_id = :t",
        t=shop.tenant_id,
    )
    changes = _rows(
        engine, "SELECT count(*) FROM membership_history WHERE tenant_id = :t", t=shop.tenant_id
    )[0][0]
    with Redis.from_url(redis_url) as redis:
        pipe = redis.pipeline(transaction=False)
        for customer_id, _ in rows:
            pipe.hget(
                customer_key(shop.tenant_id, subject_hash(shop.secret, customer_id)), "segment"
            )
        cached = pipe.execute()
    stage = Stage("membership → personalize's cache", len(rows))
    stage.lost = [c for (c, seg), got in zip(rows, cached, strict=True) if got != seg.encode()]
    stage.note = f"{changes} membership changes recorded"
    return stage


def _policy_counts(engine: Engine, shop: Shop) -> tuple[float, float]:
    states = _rows(
        engine,
        "SELECT state FROM policy_run WHERE tenant_id = :t AND placement = 'home' AND active",
        t=shop.tenant_id,
    )
    wins = shows = 0.0
    for (state,) in states:
        for offers in state["counts"].values():
            for won, failed in offers.values():
                wins, shows = wins + won, shows + won + failed
    return wins, shows


def _feedback(engine: Engine, shop: Shop, ids: list[str]) -> Stage:
    stored = {
        r[0]: r[1]
        for r in _rows(
            engine,
            "SELECT event_id, applied_at IS NOT NULL FROM feedback"
            " WHERE tenant_id = :t AND event_id = ANY(:ids)",
            t=shop.tenant_id,
            ids=ids,
        )
    }
    expected = _rows(
        engine,
        """SELECT count(*) FROM (SELECT DISTINCT f.decision_id, f.offer_id FROM feedback f
           JOIN decision d ON d.decision_id = f.decision_id
           WHERE f.tenant_id = :t AND f.kind = 'conversion' AND d.personalised
             AND d.placement = 'home' AND f.applied_at IS NOT NULL) x""",
        t=shop.tenant_id,
    )[0][0]
    wins, _ = _policy_counts(engine, shop)
    stage = Stage("feedback → counted once in its policy", len(ids))
    stage.lost = [i for i in ids if not stored.get(i)]
    missing, extra = int(expected - wins), int(wins - expected)
    stage.lost += [f"{missing} conversions not in the policy"] if missing > 0 else []
    stage.duplicated = [f"{extra} conversions counted twice"] if extra > 0 else []
    stage.note = f"policy: {wins:.0f} conversions, {expected} expected"
    return stage


def _decisions(engine: Engine, shop: Shop, ids: list[str]) -> Stage:
    found = {
        r[0]
        for r in _rows(
            engine, "SELECT decision_id FROM decision WHERE decision_id = ANY(:ids)", ids=ids
        )
    }
    shows = _rows(
        engine,
        "SELECT coalesce(sum(jsonb_array_length(offers)), 0) FROM decision"
        " WHERE tenant_id = :t AND placement = 'home' AND personalised",
        t=shop.tenant_id,
    )[0][0]
    _, counted = _policy_counts(engine, shop)
    stage = Stage("offer answer → logged decision", len(ids))
    stage.lost = sorted(set(ids) - found)
    extra = int(counted - shows)
    stage.duplicated = [f"{extra} shows counted twice"] if extra > 0 else []
    stage.note = f"policy: {counted:.0f} shows, {shows} logged"
    if stage.lost:
        stage.note += f"; lost: {', '.join(stage.lost[:3])}"
    return stage


def ledger(engine: Engine, redis_url: str, shop: Shop, client: Client) -> list[Stage]:
    accepted = {kind: list(client.seen[kind].accepted) for kind in KINDS}
    return [
        _texts(engine, shop, accepted["reviews"], "review"),
        _texts(engine, shop, accepted["transcripts"], "transcript"),
        _orders(engine, shop, accepted["orders"]),
        _cache(engine, redis_url, shop),
        _feedback(engine, shop, accepted["feedback"]),
        _decisions(engine, shop, accepted["offers"]),
    ]


# --- faults and recovery ------------------------------------------------------------------


@dataclass
class FaultResult:
    name: str
    started_at: float
    sent: int = 0
    accepted: int = 0
    refused: int = 0  # non-2xx answers, retried or not
    recovery_s: float | None = None
    lost: int = 0
    dead_lettered: int = 0


def _totals(client: Client) -> tuple[int, int, int]:
    with client.lock:
        seen = client.seen.values()
        return (
            sum(s.sent for s in seen),
            sum(len(s.accepted) for s in seen),
            sum(sum(s.statuses.values()) for s in seen),
        )


def _probe(engine: Engine, load: Load, started: float) -> float:
    """Seconds from ``started`` until fresh work went through every pipeline: an order to
    its customer's features, a review to its analysis, an offer answer to the log."""
    customer = load.client.shop.customers[0]
    results: list[float] = []

    def order() -> None:
        order_id = load.order(customer)
        sql = """SELECT f.updated_at >= o.received_at FROM orders o JOIN customer_features f
                 ON f.customer_pk = o.customer_pk WHERE o.order_id = :i"""
        wait_for(lambda: bool(_rows(engine, sql, i=order_id)[0][0]), 300, "the probe order")
        results.append(time.time() - started)

    def review() -> None:
        review_id = load.review(customer)
        sql = """SELECT count(*) FROM review r JOIN text_analysis a ON a.source_kind = 'review'
                 AND a.source_pk = r.id WHERE r.review_id = :i"""
        wait_for(lambda: _rows(engine, sql, i=review_id)[0][0] > 0, 300, "the probe review")
        results.append(time.time() - started)

    def offer() -> None:
        decision_id = None
        while decision_id is None and time.time() - started < 300:
            decision_id = load.offer(customer)  # refused (a 404 with no placement): again
            if decision_id is None:
                time.sleep(1)
        sql = "SELECT count(*) FROM decision WHERE decision_id = :i"
        wait_for(lambda: _rows(engine, sql, i=decision_id)[0][0] > 0, 300, "the probe decision")
        results.append(time.time() - started)

    threads = [threading.Thread(target=f) for f in (order, review, offer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(results) < len(threads):
        raise TimeoutError("a probe did not get through")
    return max(results)


def run_faults(
    platform: Platform, engine: Engine, load: Load, faults: list[Fault], gap_s: float
) -> list[FaultResult]:
    """Each fault in turn under the running load; recovery measured by probes after each."""
    found: list[FaultResult] = []
    for fault in faults:
        sent, accepted, refused = _totals(load.client)
        result = FaultResult(fault.name, time.time(), -sent, -accepted, -refused)
        fault.inject(platform)
        try:
            result.recovery_s = round(_probe(engine, load, result.started_at), 1)
        except TimeoutError:
            result.recovery_s = None
        time.sleep(gap_s)
        sent, accepted, refused = _totals(load.client)
        result.sent += sent
        result.accepted += accepted
        result.refused += refused
        found.append(result)
    return found


def attribute(
    engine: Engine, client: Client, stages: list[Stage], results: list[FaultResult]
) -> None:
    """Lost records and dead letters into the window of the fault they followed."""
    accepted_at: dict[str, float] = {}
    for seen in client.seen.values():
        accepted_at.update(seen.accepted)
    starts = [r.started_at for r in results] + [float("inf")]
    dead = [
        float(r[0]) for r in _rows(engine, "SELECT extract(epoch FROM created_at) FROM dead_letter")
    ]
    for i, result in enumerate(results):
        low, high = starts[i], starts[i + 1]
        result.lost = sum(
            1
            for stage in stages
            for ident in stage.lost
            if low <= accepted_at.get(ident, -1) < high
        )
        result.dead_lettered = sum(1 for at in dead if low <= at < high)
