"""The hot path's reads and its decision log, in Redis only.

A decision is acknowledged to the storefront only after Redis has taken it into the
decision stream (kept with AOF in production); the worker drains the stream into
Postgres in batches and acknowledges each entry only after its rows committed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import orjson

from services.personalize.cache import (
    DECISION_STREAM,
    SHOWN_TTL_S,
    PlacementSnapshot,
    customer_key,
    decision_key,
    placement_key,
    shown_key,
)
from services.personalize.context import parse_context
from services.personalize.serving.coalesce import Coalescer, Command
from services.personalize.serving.decide import Choice, Visitor


class PlacementUnknown(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    pass


class SnapshotCache:
    """Placement snapshots read at most once per ``ttl_s`` per process."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple[int, str], tuple[float, PlacementSnapshot | None]] = {}
        self._last_good: dict[tuple[int, str], PlacementSnapshot] = {}

    def fresh(self, tenant_id: int, placement: str) -> tuple[bool, PlacementSnapshot | None]:
        """(whether it is fresh, the snapshot: None when the placement has none)."""
        entry = self._entries.get((tenant_id, placement))
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return False, None
        return True, entry[1]

    def store(self, tenant_id: int, placement: str, raw: bytes | None) -> PlacementSnapshot | None:
        snapshot = PlacementSnapshot.model_validate_json(raw) if raw else None
        self._entries[(tenant_id, placement)] = (time.monotonic(), snapshot)
        if snapshot is not None:
            self._last_good[(tenant_id, placement)] = snapshot
        return snapshot

    def last_good(self, tenant_id: int, placement: str) -> PlacementSnapshot | None:
        """What this process last saw, for answers while Redis is unreachable."""
        return self._last_good.get((tenant_id, placement))


def _checked(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def read_visitor(
    redis: Coalescer,
    cache: SnapshotCache,
    *,
    tenant_id: int,
    placement: str,
    subject: str,
    day: date,
) -> tuple[PlacementSnapshot, Visitor]:
    """The placement's snapshot and what is cached of the visitor, in one round trip: the
    visitor's impression counters of ``day`` too where an offer here has a daily cap (or
    the snapshot is not known yet)."""
    fresh, snapshot = cache.fresh(tenant_id, placement)
    commands: list[Command] = [("HGETALL", customer_key(tenant_id, subject))]
    if not fresh:
        commands.append(("GET", placement_key(tenant_id, placement)))
    counted = not fresh or (snapshot is not None and snapshot.capped)
    if counted:
        commands.append(("HGETALL", shown_key(tenant_id, subject, day)))
    replies = _checked(await redis.execute(*commands))
    if not fresh:
        snapshot = cache.store(tenant_id, placement, replies[1])
    if snapshot is None:
        raise PlacementUnknown(placement)
    entry: dict[bytes, bytes] = replies[0]
    segment = entry.get(b"segment")
    visitor = Visitor(
        subject=subject,
        segment=segment.decode() if segment else None,
        consent=entry.get(b"consent", b"1") != b"0",
        customer_pk=int(entry[b"pk"]) if b"pk" in entry else None,
        capped=_at_cap(snapshot, replies[-1]) if counted else frozenset(),
        context=parse_context(entry.get(b"ctx")),
    )
    return snapshot, visitor


def _at_cap(snapshot: PlacementSnapshot, counters: dict[bytes, bytes]) -> frozenset[str]:
    if not counters:
        return frozenset()
    return frozenset(
        o.offer_id
        for o in snapshot.offers
        if o.max_per_day is not None and int(counters.get(o.offer_id.encode(), 0)) >= o.max_per_day
    )


def capped_shown(choice: Choice) -> list[str]:
    """The offers of a personalised answer whose showings count against a daily cap."""
    if not choice.personalised:
        return []
    return [s.offer.offer_id for s in choice.shown if s.offer.max_per_day is not None]


def decision_record(
    *,
    decision_id: str,
    tenant_id: int,
    placement: str,
    visitor: Visitor,
    choice: Choice,
    policy_version: int | None,
    created_at: datetime,
) -> bytes:
    """One decision as the stream and Postgres keep it (ids and hashes only)."""
    return orjson.dumps(
        {
            "decision_id": decision_id,
            "tenant_id": tenant_id,
            "customer_pk": visitor.customer_pk,
            "subject_hash": visitor.subject,
            "placement": placement,
            "segment_key": choice.segment if choice.personalised else None,
            "strategy": choice.strategy,
            "offers": [
                {"offer_id": s.offer.offer_id, "rank": s.rank, "propensity": s.propensity}
                for s in choice.shown
            ],
            "eligible": list(choice.eligible),
            "policy_version": policy_version if choice.strategy == "bandit" else None,
            "experiment_id": choice.experiment_id,
            "arm": choice.arm,
            "personalised": choice.personalised,
            "algorithm": choice.algorithm,
            "context": list(choice.context) if choice.context is not None else None,
            "created_at": created_at.isoformat(),
        }
    )


async def log_decision(
    redis: Coalescer,
    *,
    tenant_id: int,
    decision_id: str,
    record: bytes,
    ttl_s: int,
    counted: Sequence[str] = (),
    counter_key: str | None = None,
) -> None:
    """Into the stream (the log) and under its own key (for feedback arriving early); the
    ``counted`` offers' showings added to the visitor's counters under ``counter_key``.

    Two answers at the same moment may both see a count one below the cap and both show
    the offer: a cap can be passed by the visitor's concurrent requests, never by more."""
    commands: list[Command] = [
        ("XADD", DECISION_STREAM, "*", "d", record),
        ("SET", decision_key(tenant_id, decision_id), record, "EX", ttl_s),
    ]
    if counted and counter_key is not None:
        commands += [("HINCRBY", counter_key, offer_id, 1) for offer_id in counted]
        commands.append(("EXPIRE", counter_key, SHOWN_TTL_S))
    _checked(await redis.execute(*commands))
