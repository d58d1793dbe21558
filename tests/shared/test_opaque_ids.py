"""Ids that tenants see are a keyed permutation of the table's sequence, not its value.

A tenant whose two runs had ids 100 and 250 knew that 149 rows were made for other
tenants in between. ``opaque_id(n, table)`` (the column default of every table whose ids
tenants see) maps the sequence's value through a permutation keyed by a secret made once
per database: ids stay unique and are JSON-safe integers, but their gaps count nothing.
"""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from shared.db import create_db_engine, migrate, session_scope
from shared.settings import PostgresSettings
from tests.conftest import MakeKey
from tests.segment.builders import create_run
from tests.support.http import tenant_of
from tests.support.servers import scratch_database

pytestmark = pytest.mark.integration
LOW, HIGH = 2**48, 2**49  # every new opaque id lies here: above all older ids, below 2^53
BEFORE_OPAQUE_IDS = "c3d8e1f0a7b2"  # the revision before the one that made them
_INSERT_RUN = text(
    """
    INSERT INTO segmentation_run (tenant_id, status, algorithm, feature_set, seed)
    VALUES (:t, 'pending', 'kmeans', 'v1', 0) RETURNING id
    """
)


def _opaque(engine: Engine, values: list[int], domain: str) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT opaque_id(n, :d) FROM unnest(CAST(:ns AS bigint[]))"
                " WITH ORDINALITY AS u(n, i) ORDER BY i"
            ),
            {"ns": values, "d": domain},
        )
        return [int(v) for (v,) in rows]


def test_the_permutation_is_a_bijection_with_an_inverse(engine: Engine) -> None:
    rng = random.Random(7)
    sample = [0, 1, 2, 2**24 - 1, 2**24, 2**48 - 1, *range(3, 5000)]
    sample += [rng.randrange(2**48) for _ in range(5000)]
    ids = _opaque(engine, sample, "segmentation_run")
    assert len(set(ids)) == len(set(sample))  # no two values share an id
    assert all(LOW <= i < HIGH for i in ids)
    with engine.connect() as conn:
        back = conn.execute(
            text(
                "SELECT opaque_id_inverse(v, 'segmentation_run')"
                " FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS u(v, i) ORDER BY i"
            ),
            {"ids": ids},
        ).scalars()
        assert [int(n) for n in back] == sample
        # A value opaque_id never gives decodes to nothing.
        assert conn.execute(text("SELECT opaque_id_inverse(12345, 'x')")).scalar_one() is None
    # Consecutive values land anywhere: neither in order nor a fixed step apart.
    steps = {b - a for a, b in pairwise(ids[6:5000])}
    assert len(steps) > 4900
    assert sum(b > a for a, b in pairwise(ids[6:5000])) in range(2000, 3000)
    # Each table has its own permutation: one table's ids say nothing of another's.
    assert _opaque(engine, sample[:100], "prediction_run") != ids[:100]


def test_a_value_outside_the_domain_is_refused(engine: Engine) -> None:
    with pytest.raises(DBAPIError, match="outside"), engine.connect() as conn:
        conn.execute(text("SELECT opaque_id(CAST(2^48 AS bigint), 'segmentation_run')"))


def test_rows_of_two_tenants_made_alternately_get_ids_that_count_nothing(
    engine: Engine, make_key: MakeKey
) -> None:
    """ORM inserts and plain SQL inserts alike: the id is the column's default."""
    a, b = tenant_of(engine, make_key()), tenant_of(engine, make_key())
    ids_of_a: list[int] = []
    for _ in range(10):
        with session_scope(engine) as session:
            run = create_run(session, tenant_id=a)
            assert run.id is not None
            ids_of_a.append(run.id)
        with session_scope(engine) as session:
            session.execute(_INSERT_RUN, {"t": b})
        with session_scope(engine) as session:
            ids_of_a.append(int(session.execute(_INSERT_RUN, {"t": a}).scalar_one()))
        with session_scope(engine) as session:
            create_run(session, tenant_id=b)
    assert all(LOW <= i < HIGH for i in ids_of_a)
    assert len(set(ids_of_a)) == len(ids_of_a)
    # With sequence values, a's ids rose by 2 (or 1) each time: b's rows in between.
    assert not any(abs(y - x) <= 2 for x, y in pairwise(ids_of_a))
    assert ids_of_a not in (sorted(ids_of_a), sorted(ids_of_a, reverse=True))


def test_each_database_has_its_own_secret_and_older_rows_keep_their_ids(
    database_url: str, engine: Engine
) -> None:
    with scratch_database("segmenta_ids", admin_url=database_url) as fresh:
        url = "postgresql+psycopg://" + fresh.split("://", 1)[1]
        migrate(url, BEFORE_OPAQUE_IDS)
        other = create_db_engine(PostgresSettings(database_url=url))
        try:
            with other.begin() as conn:
                tenant = conn.execute(
                    text("INSERT INTO tenant (name) VALUES ('before') RETURNING id")
                ).scalar_one()
                old = conn.execute(_INSERT_RUN, {"t": tenant}).scalar_one()
            migrate(url)
            with other.begin() as conn:
                new = conn.execute(_INSERT_RUN, {"t": tenant}).scalar_one()
                kept = conn.execute(text("SELECT id FROM segmentation_run ORDER BY created_at"))
                assert [int(i) for (i,) in kept] == [old, new]
            assert old < LOW <= new < HIGH
            sample = list(range(1, 200))
            assert set(_opaque(other, sample, "segmentation_run")).isdisjoint(
                _opaque(engine, sample, "segmentation_run")
            )
        finally:
            other.dispose()
