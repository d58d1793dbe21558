"""The personalize worker's handlers (registered in ``worker.py``, all short tasks).

- customers and segmentations: keep each customer's cache entry (segment, consent) current;
- placements: rebuild their snapshots after offer, placement or experiment changes;
- decisions: drain the decision stream into Postgres; each newly stored decision counts as
  a show of its offers to the customer's segment (the bandit's trials);
- feedback: conversions of shown offers become the bandit's successes.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from redis import Redis
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import Session, col, select

from services.personalize.cache import (
    DECISION_GROUP,
    DECISION_STREAM,
    REJECTED_DECISIONS,
    REJECTED_MAX,
    customer_key,
    subject_hash,
)
from services.personalize.context import (
    CONTEXT_SQL,
    CONTEXT_WIDTH,
    contextual_policy,
    format_context,
)
from services.personalize.decisions import StoredDecision, insert_decisions
from services.personalize.modeling.bandit import SegmentThompson
from services.personalize.modeling.contextual import LinearThompson
from services.personalize.policies import active_policy, save_policy
from services.personalize.serving.decide import NO_SEGMENT
from services.personalize.settings import PersonalizeSettings
from services.personalize.snapshots import publish
from shared.contracts import PERSONALIZE_APPLY_FEEDBACK
from shared.models.personalize import Placement
from shared.outbox import enqueue
from shared.reliable import Subject

log = logging.getLogger(__name__)
CONSUMER = f"{socket.gethostname()}-{os.getpid()}"
CACHE_CHUNK = 2_000

# FOR SHARE: an erasure deleting the customer waits for this refresh to commit, so its
# cache erasure (which runs after) always comes after the entry written here.
_CUSTOMERS = text(
    f"""
    SELECT c.id, c.customer_id, coalesce(c.consent ->> 'marketing', 'true') <> 'false',
           m.segment_key, x.ctx
    FROM customer c
    LEFT JOIN segment_membership m ON m.customer_pk = c.id
    CROSS JOIN LATERAL ({CONTEXT_SQL}) x
    WHERE c.tenant_id = :t AND (CAST(:pks AS bigint[]) IS NULL OR c.id = ANY(:pks))
      AND c.id > :after
    ORDER BY c.id LIMIT :limit
    FOR SHARE OF c
    """
)


def _cache_customers(
    session: Session, redis: Redis, secret: str, tenant_id: int, pks: list[int] | None
) -> int:
    after, written = 0, 0
    while True:
        rows = session.execute(
            _CUSTOMERS, {"t": tenant_id, "pks": pks, "after": after, "limit": CACHE_CHUNK}
        ).all()
        pipe = redis.pipeline(transaction=False)
        for pk, customer_id, consent, segment, context in rows:
            key = customer_key(tenant_id, subject_hash(secret, customer_id))
            pipe.hset(key, mapping={"pk": pk, "consent": "1" if consent else "0"})
            if segment:
                pipe.hset(key, "segment", segment)
            else:
                pipe.hdel(key, "segment")
            if consent:
                pipe.hset(key, "ctx", format_context(context))
            else:
                pipe.hdel(key, "ctx")
        pipe.execute()
        written += len(rows)
        if len(rows) < CACHE_CHUNK:
            return written
        after = rows[-1][0]


def refresh_customers(
    session: Session, redis: Redis, secret: str, subjects: Sequence[Subject]
) -> None:
    by_tenant: dict[int, list[int]] = defaultdict(list)
    for subject in subjects:
        by_tenant[subject.tenant_id].append(subject.subject_id)
    for tenant_id, pks in by_tenant.items():
        _cache_customers(session, redis, secret, tenant_id, pks)


def refresh_segmentation(
    session: Session, redis: Redis, secret: str, subjects: Sequence[Subject]
) -> None:
    """A new active segmentation: anyone's segment may have changed."""
    for tenant_id in sorted({s.tenant_id for s in subjects}):
        n = _cache_customers(session, redis, secret, tenant_id, None)
        log.info("cached the segments of %d customers of tenant %d", n, tenant_id)


def _placements(session: Session, ids: Iterable[int]) -> list[Placement]:
    return list(session.exec(select(Placement).where(col(Placement.id).in_(sorted(ids)))).all())


def refresh_placements(session: Session, redis: Redis, subjects: Sequence[Subject]) -> None:
    for placement in _placements(session, (s.subject_id for s in subjects)):
        publish(session, redis, tenant_id=placement.tenant_id, placement=placement.name)


# Per placement, what the contextual policy learns: ("show" | "win", context, offer).
ContextRows = dict[tuple[int, str], list[tuple[str, tuple[float, ...], str]]]


def _learn(
    session: Session,
    redis: Redis,
    settings: PersonalizeSettings,
    changes: dict[tuple[int, str], Counter[tuple[str, str, str]]],
    contextual: ContextRows | None = None,
) -> None:
    """Apply counted shows and conversions per placement (to the segment bandit, and with
    their contexts to the linear policy), then publish its snapshot."""
    rows = contextual or {}
    for tenant_id, placement in sorted(set(changes) | set(rows)):
        run, policy = active_policy(session, tenant_id=tenant_id, placement=placement, lock=True)
        _apply_counts(policy, changes.get((tenant_id, placement), Counter()))
        linear = None
        if rows.get((tenant_id, placement)):
            linear = contextual_policy(run.state)
            _apply_contextual(linear, rows[(tenant_id, placement)])
        save_policy(
            session,
            run,
            policy,
            snapshot_every_s=settings.personalize_snapshot_every_s,
            contextual=linear,
        )
        publish(session, redis, tenant_id=tenant_id, placement=placement)


def _apply_contextual(
    policy: LinearThompson, rows: Sequence[tuple[str, tuple[float, ...], str]]
) -> None:
    """A show is a row with reward 0; its conversion adds the reward to the same row."""
    for kind, apply in (("show", policy.update), ("win", policy.reward)):
        picked = [(x, offer) for k, x, offer in rows if k == kind]
        if picked:
            reward = 0.0 if kind == "show" else 1.0
            apply([x for x, _ in picked], [o for _, o in picked], [reward] * len(picked))


def _apply_counts(policy: SegmentThompson, counts: Counter[tuple[str, str, str]]) -> None:
    shows: Counter[tuple[str, str]] = Counter()
    wins: Counter[tuple[str, str]] = Counter()
    for (kind, segment, offer), n in counts.items():
        (shows if kind == "show" else wins)[(segment, offer)] += n
    policy.record(
        (segment, offer, shows[(segment, offer)], wins[(segment, offer)])
        for segment, offer in sorted(set(shows) | set(wins))
    )


# Conversions of shown offers, each (decision, offer) once, of decisions already stored.
_CONVERSIONS = text(
    """
    WITH todo AS (
        SELECT f.id, f.decision_id, f.offer_id, f.kind, d.segment_key, d.personalised,
               d.context
        FROM feedback f JOIN decision d ON d.decision_id = f.decision_id
        WHERE f.tenant_id = :t AND f.applied_at IS NULL AND d.placement = :p
        ORDER BY f.id LIMIT 50000
        FOR UPDATE OF f SKIP LOCKED
    ), marked AS (
        UPDATE feedback SET applied_at = now() FROM todo WHERE feedback.id = todo.id
    )
    SELECT DISTINCT ON (t.decision_id, t.offer_id) t.segment_key, t.offer_id, t.context
    FROM todo t
    WHERE t.kind = 'conversion' AND t.personalised
      AND NOT EXISTS (SELECT 1 FROM feedback e WHERE e.decision_id = t.decision_id
                      AND e.offer_id = t.offer_id AND e.kind = 'conversion'
                      AND e.applied_at IS NOT NULL AND e.id <> t.id)
    """
)


def apply_feedback(
    session: Session, redis: Redis, settings: PersonalizeSettings, subjects: Sequence[Subject]
) -> None:
    changes: dict[tuple[int, str], Counter[tuple[str, str, str]]] = {}
    contextual: ContextRows = {}
    for placement in _placements(session, (s.subject_id for s in subjects)):
        key = (placement.tenant_id, placement.name)
        rows = session.execute(_CONVERSIONS, {"t": placement.tenant_id, "p": placement.name})
        counts: Counter[tuple[str, str, str]] = Counter()
        for segment, offer, context in rows:
            counts[("win", segment or NO_SEGMENT, offer)] += 1
            if _usable(context):
                contextual.setdefault(key, []).append(("win", tuple(context), offer))
        if counts:
            changes[key] = counts
    _learn(session, redis, settings, changes, contextual)


def _usable(context: Sequence[float] | None) -> bool:
    return context is not None and len(context) == CONTEXT_WIDTH


def _shows(
    stored: Sequence[StoredDecision],
) -> tuple[dict[tuple[int, str], Counter[tuple[str, str, str]]], ContextRows]:
    changes: dict[tuple[int, str], Counter[tuple[str, str, str]]] = defaultdict(Counter)
    contextual: ContextRows = defaultdict(list)
    for decision in stored:
        if decision.personalised:
            key = (decision.tenant_id, decision.placement)
            for offer in decision.offer_ids:
                segment = decision.segment_key or NO_SEGMENT
                changes[key][("show", segment, offer)] += 1
                if decision.context is not None and _usable(decision.context):
                    contextual[key].append(("show", decision.context, offer))
    return changes, contextual


def drain_decisions(
    session: Session, redis: Redis, settings: PersonalizeSettings, consumer: str = CONSUMER
) -> list[bytes]:
    """Store up to a batch of logged decisions and learn their shows; the stream ids to
    acknowledge once the caller committed (a crash before that re-delivers them, and
    decisions already stored are neither stored nor counted twice).

    ``consumer`` names this worker in the stream's group, the same for every drain it runs
    (one at a time: ``--concurrency 1``): the entries a drain of it took and never
    acknowledged come back at its next drain, a second later. A drain can stop between
    taking its entries and acknowledging them: an error (Postgres or Redis gone
    mid-batch), or its pool process terminated by Celery as Redis restarts (the broker
    connection dropped, and
    ``worker_cancel_long_running_tasks_on_connection_loss`` is on). Read only as new
    (``>``), those entries waited for the 30 s idle claim below, and a Redis that lost its
    data meanwhile lost them with it: answers acknowledged, never logged."""
    try:
        redis.xgroup_create(DECISION_STREAM, DECISION_GROUP, id="0", mkstream=True)
    except Exception as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    batch = settings.personalize_drain_batch
    # This worker's own unacknowledged entries first (id 0: its pending list, not new ones).
    entries = _read_group(redis, consumer, "0", batch)
    # Then entries a consumer that is gone took and never acknowledged (a worker stopped
    # for good, or one before this naming): idle long enough to be nobody's work now.
    # (Redis 6.2 answers [cursor, entries]; 7 adds the ids it deleted.)
    if len(entries) < batch:
        reply = redis.xautoclaim(
            DECISION_STREAM,
            DECISION_GROUP,
            consumer,
            min_idle_time=30_000,
            count=batch - len(entries),
        )
        entries += list(reply[1])  # type: ignore[index]
    if len(entries) < batch:
        entries += _read_group(redis, consumer, ">", batch - len(entries))
    taken = dict(entries)  # an entry both pending here and claimed: once
    records = [(entry_id, fields[b"d"]) for entry_id, fields in taken.items() if fields]
    stored = _store(session, redis, records)
    changes, contextual = _shows(stored)
    _learn(session, redis, settings, changes, contextual)
    _queue_waiting_feedback(session, [d.decision_id for d in stored])
    return list(taken)


# What a record Postgres refuses raises (a value out of range or of the wrong shape, a
# missing one, JSON that is not a record); connection errors are not among them and fail
# the drain, which the next tick retries.
_REFUSED = (DataError, IntegrityError, ValueError)


def _store(
    session: Session, redis: Redis, records: list[tuple[bytes, bytes]]
) -> list[StoredDecision]:
    """Store a batch in one statement. If Postgres refuses it, store each record alone
    and set aside the ones it refuses (`REJECTED_DECISIONS`, with the error's class and
    SQLSTATE only: no values), so that one bad entry never stops the log behind it. The
    API writes no such record; a writer of another version, or a hand-made entry, could."""
    try:
        with session.begin_nested():
            return insert_decisions(session, [record for _, record in records])
    except _REFUSED:
        pass
    stored: list[StoredDecision] = []
    for entry_id, record in records:
        try:
            with session.begin_nested():
                stored += insert_decisions(session, [record])
        except _REFUSED as exc:
            reason = type(getattr(exc, "orig", None) or exc).__name__
            sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
            redis.xadd(
                REJECTED_DECISIONS,
                {"entry": entry_id, "d": record, "error": reason, "sqlstate": sqlstate},
                maxlen=REJECTED_MAX,
                approximate=True,
            )
            log.error("decision entry %s set aside: %s %s", entry_id.decode(), reason, sqlstate)
    return stored


def _read_group(redis: Redis, consumer: str, after: str, count: int) -> list[Any]:
    """Entries of the decision stream for ``consumer``: new ones (``>``), or those it
    already took and has not acknowledged (``0``; an entry deleted since has no fields)."""
    read = redis.xreadgroup(DECISION_GROUP, consumer, {DECISION_STREAM: after}, count=count)
    return [entry for _, stream_entries in read or [] for entry in stream_entries]  # type: ignore[union-attr]


# Feedback that arrived before its decision was stored: its placements learn it now.
_WAITING = text(
    """
    SELECT DISTINCT p.tenant_id, p.id FROM feedback f
    JOIN decision d ON d.decision_id = f.decision_id
    JOIN placement p ON p.tenant_id = d.tenant_id AND p.name = d.placement
    WHERE f.decision_id = ANY(:ids) AND f.applied_at IS NULL
    """
)


def _queue_waiting_feedback(session: Session, decision_ids: list[str]) -> None:
    if not decision_ids:
        return
    by_tenant: dict[int, list[int]] = defaultdict(list)
    for tenant_id, placement_id in session.execute(_WAITING, {"ids": decision_ids}):
        by_tenant[tenant_id].append(placement_id)
    for tenant_id, ids in by_tenant.items():
        enqueue(session, tenant_id=tenant_id, task_name=PERSONALIZE_APPLY_FEEDBACK, subject_ids=ids)


def acknowledge(redis: Redis, entry_ids: Sequence[bytes]) -> None:
    if entry_ids:
        pipe = redis.pipeline(transaction=True)
        pipe.xack(DECISION_STREAM, DECISION_GROUP, *entry_ids)
        pipe.xdel(DECISION_STREAM, *entry_ids)
        pipe.execute()
