"""What an import gathers between two writes: validated records, or events as COPY lines.

Records of most kinds are gathered as models and stored through the record service.
Events, the high-volume kind, are gathered as ready COPY text, so writing a chunk is one
COPY and a merge, with no Python work per row while Postgres works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from services.ingest.imports.events import event_copy_line
from services.ingest.imports.staging import copy_lines, merge_staged
from services.ingest.records.schemas import FieldError, Record, RecordKind
from services.ingest.records.service import StoreOutcome, store_records
from services.ingest.records.validation import validate_record
from shared.contracts import SEGMENT_REFRESH_CUSTOMERS
from shared.erasure import subject_hash
from shared.outbox import enqueue_customers

_ANY_SUPPRESSION = text("SELECT EXISTS (SELECT 1 FROM suppression WHERE tenant_id = :t)")
_SUPPRESSED = text(
    "SELECT subject_hash FROM suppression WHERE tenant_id = :t AND subject_hash = ANY(:h)"
)


@dataclass
class RecordChunk:
    kind: RecordKind
    records: list[Record] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def add(self, item: dict[str, Any]) -> list[FieldError] | None:
        result = validate_record(self.kind, item)
        if isinstance(result, Record):
            self.records.append(result)
            return None
        return result

    def store(self, session: Session, *, tenant_id: int, secret: str) -> StoreOutcome:
        return store_records(
            session,
            tenant_id=tenant_id,
            kind=self.kind,
            records=self.records,
            secret=secret,
            bulk=True,
        )


@dataclass
class EventChunk:
    customer_ids: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, item: dict[str, Any]) -> list[FieldError] | None:
        result = event_copy_line(item)
        if isinstance(result, list):
            return result
        self.customer_ids.append(result[0])
        self.lines.append(result[1])
        return None

    def store(self, session: Session, *, tenant_id: int, secret: str) -> StoreOutcome:
        kept = self._unsuppressed(session, tenant_id, secret)
        inserted: list[int] = []
        if kept:
            copy_lines(session, "".join(kept).encode())
            inserted = merge_staged(session, tenant_id)
        if inserted:
            enqueue_customers(
                session,
                tenant_id=tenant_id,
                task_name=SEGMENT_REFRESH_CUSTOMERS,
                customer_pks=inserted,
            )
        return StoreOutcome(
            accepted=len(inserted),
            duplicates=len(kept) - len(inserted),
            suppressed=len(self.lines) - len(kept),
        )

    def _unsuppressed(self, session: Session, tenant_id: int, secret: str) -> list[str]:
        """The lines of customers not erased (hashing ids only when the tenant erased any)."""
        if not session.execute(_ANY_SUPPRESSION, {"t": tenant_id}).scalar_one():
            return self.lines
        hashes = {cid: subject_hash(secret, cid) for cid in set(self.customer_ids)}
        params = {"t": tenant_id, "h": sorted(set(hashes.values()))}
        suppressed = set(session.execute(_SUPPRESSED, params).scalars())
        if not suppressed:
            return self.lines
        return [
            line
            for cid, line in zip(self.customer_ids, self.lines, strict=True)
            if hashes[cid] not in suppressed
        ]


Chunk = RecordChunk | EventChunk


def new_chunk(kind: RecordKind) -> Chunk:
    return EventChunk() if kind is RecordKind.EVENTS else RecordChunk(kind)
