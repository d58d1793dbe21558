"""Computing and storing feature vectors: one INSERT ... SELECT ... ON CONFLICT, all in SQL.

``compute_features`` flushes, never commits: the caller's unit of work decides.
``compute_features_in_parts`` is a full run that commits part by part.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, text
from sqlmodel import Session

from services.segment.features.registry import DEFAULT_FEATURE_SET, get_feature_set
from services.segment.features.sql import Scope, select_sql, upsert_sql
from shared.db import session_scope

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
    if customer_pks is not None and not customer_pks:
        return 0
    if customer_pks is None:
        written = _compute(session, tenant_id, feature_set, as_of, "all", {})
        _analyze(session)
        return written
    pks = {"customer_pks": sorted(set(customer_pks))}
    return _compute(session, tenant_id, feature_set, as_of, "some", pks)


def compute_features_in_parts(
    engine: Engine,
    *,
    tenant_id: int,
    feature_set: str = DEFAULT_FEATURE_SET,
    as_of: datetime | None = None,
    parts: int = 2,
) -> int:
    """A full run of the tenant as ``parts`` statements over ranges of customer ids, each
    on its own connection at the same time, so Postgres works on as many cores; rows
    written. Each part commits on its own: features are derived data, and a run stopped
    half-way leaves rows that the next run simply computes again.
    """
    with session_scope(engine) as session:
        bounds = _split(session, tenant_id, parts)

    def part(pk_from: int, pk_to: int) -> int:
        with session_scope(engine) as session:
            ids = {"pk_from": pk_from, "pk_to": pk_to}
            return _compute(session, tenant_id, feature_set, as_of, "range", ids)

    with ThreadPoolExecutor(max_workers=max(1, len(bounds) - 1)) as pool:
        written = sum(pool.map(part, bounds[:-1], bounds[1:]))
    with session_scope(engine) as session:
        _analyze(session)
    return written


def features_as_of(
    session: Session,
    *,
    tenant_id: int,
    as_of: datetime,
    feature_set: str = DEFAULT_FEATURE_SET,
) -> tuple[list[int], list[list[float]]]:
    """Every customer's stored features as of ``as_of``, computed without storing them:
    ``(customer_pks, vectors)`` sorted by customer, in the set's stored order.

    Only what happened up to ``as_of`` is read (each source table is filtered by its own
    time column), so a past cut-off gives the vectors the customers had then: this is
    what supervised models train and backtest on. The scores (CLV, P(alive)) of the set
    are left out: they are the customer's latest, computed after ``as_of``."""
    definition = get_feature_set(feature_set)
    cut_off = _aware(as_of)
    params: dict[str, Any] = {
        **definition.params,
        "tenant_id": tenant_id,
        "as_of": cut_off,
        "as_of_days": cut_off.timestamp() / 86400,
    }
    statement = text(select_sql(definition, scope="all") + "\nORDER BY s.customer_pk")
    with _local_settings(session, FULL_RUN_SETTINGS):
        rows = session.execute(statement, params).all()
    return [int(row[0]) for row in rows], [list(row[1]) for row in rows]


def _split(session: Session, tenant_id: int, parts: int) -> list[int]:
    """Customer ids cutting the tenant into ``parts`` ranges of about equal size: the first
    id, the cuts, and one past the last id (fewer cuts for a tenant too small to split)."""
    fractions = [n / parts for n in range(1, parts)]
    first, cuts, last = session.execute(_SPLIT, {"t": tenant_id, "f": fractions}).one()
    if first is None:
        return [0, 0]
    return sorted({int(first), *(int(c) for c in cuts or ()), int(last) + 1})


_SPLIT = text(
    "SELECT min(id), percentile_disc(CAST(:f AS float8[])) WITHIN GROUP (ORDER BY id),"
    " max(id) FROM customer WHERE tenant_id = :t"
)


def _compute(
    session: Session,
    tenant_id: int,
    feature_set: str,
    as_of: datetime | None,
    scope: Scope,
    scope_params: Mapping[str, Any],
) -> int:
    definition = get_feature_set(feature_set)
    cut_off = _aware(as_of) if as_of is not None else datetime.now(UTC)
    params: dict[str, Any] = {
        **definition.params,
        **scope_params,
        "tenant_id": tenant_id,
        "feature_set": definition.name,
        "as_of": cut_off,
        "as_of_days": cut_off.timestamp() / 86400,
    }
    statement = text(upsert_sql(definition, scope=scope, newer_only=as_of is None))
    settings = REFRESH_SETTINGS if scope == "some" else FULL_RUN_SETTINGS
    with _local_settings(session, settings):
        result = cast(CursorResult[Any], session.execute(statement, params))
    session.flush()
    return int(result.rowcount)


def _analyze(session: Session) -> None:
    # Every row of the tenant is new: statistics from before would plan the reads that
    # follow (a join per customer instead of one hash join) badly.
    session.execute(text("ANALYZE customer_features"))


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
