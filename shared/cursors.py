"""List cursors that say nothing about other tenants.

Ids that tenants see are opaque (``opaque_id()`` in the database: a keyed permutation of
a table's sequence), so they no longer follow creation order. Lists that page newest
first order by (creation time, id) and keep their cursor, the id of a page's last item:
``position`` finds that item's time within the tenant. Lists that page through customers
in pk order hand out the pk encrypted by the same permutation (``customer_cursor``), never
the pk itself, whose gaps would count other tenants' customers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from sqlalchemy import text
from sqlmodel import Session

# The lists that page newest first by id: table -> the column that orders them in time.
_TIME_COLUMNS: Final = {
    "segmentation_run": "created_at",
    "prediction_run": "created_at",
    "anomaly_flag": "detected_at",
    "segment_alert": "detected_at",
    "webhook_delivery": "created_at",
}
PagedTable = Literal[
    "segmentation_run", "prediction_run", "anomaly_flag", "segment_alert", "webhook_delivery"
]
_CUSTOMER_DOMAIN: Final = "customer_cursor"
_ENCODE = text("SELECT opaque_id(:pk, :domain)")
_DECODE = text("SELECT opaque_id_inverse(:cursor, :domain)")


class CursorDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    """A cursor this list never handed out (or whose item is gone): answered with a 422
    naming ``field``."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is not a cursor of this list")
        self.field = field


def position(
    session: Session, *, table: PagedTable, tenant_id: int, cursor: int | None, field: str
) -> datetime | None:
    """The time of the tenant's item ``cursor`` (None without a cursor): the page after
    it holds the items before (time, cursor)."""
    if cursor is None:
        return None
    query = text(f"SELECT {_TIME_COLUMNS[table]} FROM {table} WHERE tenant_id = :t AND id = :id")
    found = session.execute(query, {"t": tenant_id, "id": cursor}).scalar_one_or_none()
    if found is None:
        raise CursorDoesNotExist(field)
    return found  # type: ignore[no-any-return]


def customer_cursor(session: Session, customer_pk: int) -> int:
    """The cursor handed out for a page that ends at ``customer_pk``."""
    return int(session.execute(_ENCODE, {"pk": customer_pk, "domain": _CUSTOMER_DOMAIN}).one()[0])


def customer_after(session: Session, cursor: int, *, field: str) -> int:
    """The customer pk a cursor from ``customer_cursor`` stands for; 0 (the start) for 0."""
    if cursor == 0:
        return 0
    pk = session.execute(_DECODE, {"cursor": cursor, "domain": _CUSTOMER_DOMAIN}).one()[0]
    if pk is None:
        raise CursorDoesNotExist(field)
    return int(pk)
