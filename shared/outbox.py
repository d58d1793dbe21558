"""The transactional outbox: ``enqueue()`` in the caller's transaction, and the relay."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from celery import Celery
from sqlalchemy import Engine, TextClause, text
from sqlmodel import Session

from shared.broker_watch import BrokerWatch
from shared.contracts import OutboxBatch, queue_for
from shared.db import session_scope

log = logging.getLogger(__name__)

_ENQUEUE = text(
    """
    INSERT INTO outbox (tenant_id, task_name, subject_id, customer_pk, available_at)
    SELECT :tenant_id, :task_name, s.subject_id, s.customer_pk,
           now() + make_interval(secs => :delay_s)
    FROM unnest(CAST(:subject_ids AS bigint[]), CAST(:customer_pks AS bigint[]))
         AS s(subject_id, customer_pk)
    ON CONFLICT (task_name, subject_id) WHERE published_at IS NULL DO NOTHING
    """
)


def enqueue(
    session: Session,
    *,
    tenant_id: int,
    task_name: str,
    subject_ids: Sequence[int],
    customer_pks: Sequence[int | None] | None = None,
    delay_s: float = 0,
) -> None:
    """Record work for ``task_name`` in the caller's transaction; the relay publishes it
    once committed, and not before ``delay_s`` seconds from now.

    Work for a subject that is already pending coalesces into the pending row.
    """
    if not subject_ids:
        return
    queue_for(task_name)  # refuse unroutable names at the producer, not in the relay
    pks = list(customer_pks) if customer_pks is not None else [None] * len(subject_ids)
    session.execute(
        _ENQUEUE,
        {
            "tenant_id": tenant_id,
            "task_name": task_name,
            "subject_ids": list(subject_ids),
            "customer_pks": pks,
            "delay_s": delay_s,
        },
    )


def enqueue_customers(
    session: Session, *, tenant_id: int, task_name: str, customer_pks: Iterable[int]
) -> None:
    """Work about each of these customers (the subject is the customer), once each."""
    pks = sorted(set(customer_pks))
    enqueue(session, tenant_id=tenant_id, task_name=task_name, subject_ids=pks, customer_pks=pks)


_CLAIM_PENDING = text(
    """
    WITH picked AS (
        SELECT id FROM outbox
        WHERE published_at IS NULL AND available_at <= now()
        ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox o SET published_at = now(), publish_count = o.publish_count + 1
    FROM picked WHERE o.id = picked.id
    RETURNING o.id, o.task_name
    """
)

# Published long ago and not completed: the message may have vanished with Redis.
# Each re-drive waits longer, so work nobody consumes does not flood the broker.
_CLAIM_STALE = text(
    """
    WITH picked AS (
        SELECT id FROM outbox
        WHERE published_at < now() - make_interval(secs => :stale_s * least(publish_count, 8))
        ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox o SET published_at = now(), publish_count = o.publish_count + 1
    FROM picked WHERE o.id = picked.id
    RETURNING o.id, o.task_name
    """
)

# Rows handed out again because no message carries them any more (see BrokerWatch).
_CLAIM_LOST = text(
    """
    WITH picked AS (
        SELECT id FROM outbox
        WHERE id = ANY(:ids) AND published_at < :cutoff
        ORDER BY id FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox o SET published_at = now(), publish_count = o.publish_count + 1
    FROM picked WHERE o.id = picked.id
    RETURNING o.id, o.task_name
    """
)
_PUBLISHED_BEFORE = text(
    "SELECT now() - make_interval(secs => :grace_s), "
    "coalesce(array_agg(id), '{}') FROM ("
    "  SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => :grace_s)"
    "  ORDER BY id LIMIT :limit) old"
)


@dataclass
class OutboxRelay:
    """Publishes committed outbox rows as Celery tasks carrying batches of outbox ids.

    Several relays may run: ``SKIP LOCKED`` gives each its own rows. Rows are marked
    published in the same transaction that publishes them; a crash before commit means
    they are published again, which consumers tolerate (they are idempotent).
    """

    engine: Engine
    celery_app: Celery
    batch_size: int = 200
    claim_limit: int = 5_000
    stale_after_s: int = 900
    watch: BrokerWatch | None = None

    def publish_pending(self) -> int:
        return self._publish(_CLAIM_PENDING, {"limit": self.claim_limit})

    def redrive_stale(self) -> int:
        return self._publish(
            _CLAIM_STALE, {"limit": self.claim_limit, "stale_s": self.stale_after_s}
        )

    def redrive_lost(self) -> int:
        """Publish again the rows that were published but that no message carries now."""
        if self.watch is None:
            return 0
        with session_scope(self.engine) as session:
            cutoff, old = session.execute(
                _PUBLISHED_BEFORE, {"grace_s": self.watch.grace_s, "limit": self.claim_limit}
            ).one()
        if not old:
            return 0  # nothing has waited long enough to be judged: Redis is not asked
        view = self.watch.view()
        lost = sorted(set(old) - view.outbox_ids)
        self.watch.forget(view.orphaned_tags)
        if not lost:
            return 0
        published = self._publish(_CLAIM_LOST, {"ids": lost, "cutoff": cutoff})
        if published:
            log.warning("%d outbox rows had lost their message; published again", published)
        return published

    def _publish(self, claim: TextClause, params: Mapping[str, object]) -> int:
        with session_scope(self.engine) as session:
            rows = session.execute(claim, params).all()
            by_task: dict[str, list[int]] = defaultdict(list)
            for outbox_id, task_name in rows:
                by_task[task_name].append(outbox_id)
            for task_name, ids in by_task.items():
                for start in range(0, len(ids), self.batch_size):
                    self._send(task_name, sorted(ids[start : start + self.batch_size]))
        return len(rows)

    def _send(self, task_name: str, outbox_ids: list[int]) -> None:
        payload = OutboxBatch(outbox_ids=outbox_ids)
        self.celery_app.send_task(
            task_name, kwargs=payload.model_dump(), queue=queue_for(task_name)
        )

    def run(self, *, stop: threading.Event, poll_interval_s: float = 0.2) -> None:
        """Publish until ``stop`` is set; a failing pass is logged and retried."""
        passes = 0
        while not stop.is_set():
            try:
                published = self.publish_pending()
                if passes % 25 == 0:
                    published += self.redrive_lost()
                if passes % 50 == 0:
                    published += self.redrive_stale()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                published = 0
                stop.wait(1.0)
            passes += 1
            if published < self.claim_limit:
                stop.wait(poll_interval_s)
