"""Computing and storing feature vectors: one INSERT ... SELECT ... ON CONFLICT, all in SQL.

Functions flush, never commit: the caller's unit of work decides.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, text
from sqlmodel import Session

from services.segment.features.registry import DEFAULT_FEATURE_SET, get_feature_set
from services.segment.features.sql import upsert_sql

# A full run reads whole tenants. Sorting each source by customer and aggregating in
# order measured about twice as fast as hash tables of millions of groups, and reading a
# table through a customer_pk index visits its heap at random (4x slower than sorting);
# bitmap scans stay allowed for a small tenant in a big table. Sorts spill to disk
# efficiently: more work_mem than this bought nothing. A run may outlast the API's
# statement timeout; the task's time limit still bounds it.
FULL_RUN_SETTINGS = {
    "work_mem": "64MB",
    "enable_hashagg": "off",
    "enable_indexscan": "off",
    "statement_timeout": "600s",
}
# A refresh reads a few customers through their indexes in milliseconds: compiling its
# expressions (JIT, which a prepared statement's generic plan may trigger) costs more.
REFRESH_SETTINGS = {"jit": "off"}


def compute_features(
    session: Session,
    *,
    tenant_id: int,
    feature_set: str = DEFAULT_FEATURE_SET,
    as_of: datetime | None = None,
    customer_pks: Collection[int] | None = None,
) -> int:
    """Compute the tenant's feature vectors as of ``as_of`` and upsert them; rows written.

    ``customer_pks`` limits the run to those customers of the tenant (the refresh after
    new activity); by default every customer of the tenant is computed. Without
    ``as_of`` the cut-off is now, and a stored row with a later cut-off is kept.
    """
    definition = get_feature_set(feature_set)
    if customer_pks is not None and not customer_pks:
        return 0
    some = customer_pks is not None
    cut_off = _aware(as_of) if as_of is not None else datetime.now(UTC)
    params: dict[str, Any] = {
        **definition.params,
        "tenant_id": tenant_id,
        "feature_set": definition.name,
        "as_of": cut_off,
        "as_of_days": cut_off.timestamp() / 86400,
    }
    if customer_pks is not None:
        params["customer_pks"] = sorted(set(customer_pks))
    statement = text(upsert_sql(definition, some=some, newer_only=as_of is None))
    with _local_settings(session, REFRESH_SETTINGS if some else FULL_RUN_SETTINGS):
        result = cast(CursorResult[Any], session.execute(statement, params))
    if not some:
        # Every row of the tenant is new: statistics from before would plan the reads
        # that follow (a join per customer instead of one hash join) badly.
        session.execute(text("ANALYZE customer_features"))
    session.flush()
    return int(result.rowcount)


def _aware(moment: datetime) -> datetime:
    # A naive time counts as UTC, as in the demo generator.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def _local_settings(session: Session, settings: Mapping[str, str]) -> Iterator[None]:
    """Set ``settings`` for the statements inside, then put the previous values back.

    The values are transaction-local: after an error the caller's rollback restores them.
    """
    names = list(settings)
    previous = session.execute(_CURRENT, {"names": names}).scalars().all()
    session.execute(_SET, {"names": names, "values": list(settings.values())})
    yield
    session.execute(_SET, {"names": names, "values": list(previous)})


_CURRENT = text(
    "SELECT current_setting(n) FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS s(n, i)"
    " ORDER BY i"
)
_SET = text(
    "SELECT set_config(n, v, true)"
    " FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) AS s(n, v)"
)
