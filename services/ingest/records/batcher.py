"""Group commit: single records that arrive together are stored in one transaction.

A request with one record hands it to the ``GroupCommitter`` and waits for its own
outcome, which comes only after the commit that stored it. While a few transactions are
in flight, the records that arrive meanwhile wait in a queue and go together in the next
one: under load one transaction carries many records, and an idle API adds no delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from services.ingest.records.schemas import Record, RecordKind
from services.ingest.records.service import Outcome, store_each
from services.ingest.transactions import run_in_transaction
from shared.auth import active_key_ids
from shared.db import is_connectivity_error
from shared.web.deps import Database

log = logging.getLogger(__name__)


class KeyRevokedError(Exception):
    """The key that sent the record was revoked after it was authenticated."""


@dataclass(frozen=True)
class Submitted:
    key_id: int
    tenant_id: int
    kind: RecordKind
    record: Record


def write_group(engine: Engine, items: Sequence[Submitted], secret: str) -> list[Outcome | None]:
    """Store ``items`` in one transaction; each one's outcome, None where its key is revoked."""

    def work(session: Session) -> list[Outcome | None]:
        active = active_key_ids(session, {item.key_id for item in items})
        groups: dict[tuple[int, RecordKind], list[int]] = {}
        for n, item in enumerate(items):
            if item.key_id in active:
                groups.setdefault((item.tenant_id, item.kind), []).append(n)
        outcomes: list[Outcome | None] = [None] * len(items)
        for (tenant_id, kind), indexes in sorted(groups.items()):
            records = [items[n].record for n in indexes]
            stored = store_each(
                session, tenant_id=tenant_id, kind=kind, records=records, secret=secret
            )
            for n, outcome in zip(indexes, stored, strict=True):
                outcomes[n] = outcome
        return outcomes

    return run_in_transaction(engine, work)


@dataclass(frozen=True)
class _Waiting:
    item: Submitted
    answer: asyncio.Future[Outcome]


class GroupCommitter:
    """Stores single records in shared transactions, at most ``max_inflight`` at once.

    Its engine may skip the pool's pre-ping: a group that fails on a dead connection is
    written once more.
    """

    def __init__(
        self, database: Database, secret: str, *, max_group: int = 128, max_inflight: int = 2
    ) -> None:
        self.database = database
        self.secret = secret
        self.max_group = max_group
        self.max_inflight = max_inflight
        self._queue: list[_Waiting] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def store(self, item: Submitted) -> Outcome:
        """The record's outcome once committed; ``KeyRevokedError`` or the database's error."""
        waiting = _Waiting(item, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        self._start_flushes()
        return await waiting.answer

    async def aclose(self) -> None:
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _start_flushes(self) -> None:
        while self._queue and len(self._flushes) < self.max_inflight:
            group = self._queue[: self.max_group]
            del self._queue[: self.max_group]
            task = asyncio.create_task(self._flush(group))
            self._flushes.add(task)
            task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._start_flushes()

    async def _flush(self, group: list[_Waiting]) -> None:
        try:
            await self._flush_group(group)
        finally:  # whatever happened, nobody waits for ever
            for waiting in group:
                _fail(waiting, RuntimeError("the record's group ended without an answer"))

    async def _flush_group(self, group: list[_Waiting]) -> None:
        try:
            outcomes = await self._write(group)
        except Exception as exc:
            if len(group) == 1 or is_connectivity_error(exc):
                for waiting in group:
                    _fail(waiting, exc)
                return
            # One record may be what failed the transaction: the others must not share
            # its fate, so each goes again in a transaction of its own.
            log.warning(
                "a group of %d records failed (%s); storing them one by one",
                len(group),
                type(exc).__name__,
            )
            # In arrival order, so that of two records with one id the first is accepted.
            for waiting in group:
                await self._flush_group([waiting])
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            if outcome is None:
                _fail(waiting, KeyRevokedError())
            elif not waiting.answer.done():
                waiting.answer.set_result(outcome)

    async def _write(self, group: list[_Waiting]) -> list[Outcome | None]:
        items = [waiting.item for waiting in group]
        try:
            return await self.database.run(write_group, self.database.engine, items, self.secret)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        # The pooled connection had died (a Postgres restart): once more, on a fresh one.
        # Had the commit gone through after all, the records now count as duplicates.
        return await self.database.run(write_group, self.database.engine, items, self.secret)


def _fail(waiting: _Waiting, exc: BaseException) -> None:
    if not waiting.answer.done():
        waiting.answer.set_exception(exc)
