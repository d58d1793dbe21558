"""Feature computation at scale: ``python -m bench.features [--customers 100000]``.

Creates a scratch database (or uses ``--url``), fills one tenant with synthetic data made
by ``generate_series`` in SQL (customers, 10 orders per customer with 2.5 lines each,
events, reviews and transcripts with their analyses), then times a full compute, the
refresh of one and of ten customers, and ``load_matrix``. ``--keep`` leaves the database
(its URL is printed) so that ``--url URL --reuse`` can time again without regenerating.
``--explain`` prints the full run's plan with timings. Nothing is written to the repo.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from sqlalchemy import create_engine, text
from sqlmodel import Session

from services.segment.features import compute_features, get_feature_set, load_matrix
from services.segment.features.repository import FULL_RUN_SETTINGS
from services.segment.features.sql import select_sql
from shared.db import migrate
from tests.support.servers import scratch_database, sqlalchemy_url
from tests.support.settings import test_environment

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
Result = TypeVar("Result")

_GENERATE = [
    "SELECT setseed(0.42)",
    "INSERT INTO tenant (name) VALUES ('bench-features')",
    """INSERT INTO customer (tenant_id, customer_id, signup_at)
       SELECT %(t)s, 'c-' || g, %(as_of)s - random() * 1500 * interval '1 day'
       FROM generate_series(1, %(n)s) g""",
    """INSERT INTO product (tenant_id, product_id, name, category, price)
       SELECT %(t)s, 'p-' || g, 'product ' || g, (ARRAY['knitwear', 'shoes', 'outerwear',
              'accessories', 'home', 'beauty', 'basics'])[1 + g %% 7], 5 + g %% 200
       FROM generate_series(1, 200) g""",
    # Skewed: a few customers order a lot, about a fifth never do.
    """INSERT INTO orders (tenant_id, order_id, customer_pk, placed_at, currency, total,
                          channel, discount_code)
       SELECT %(t)s, 'o-' || g, %(first)s + floor(power(random(), 1.6) * %(n)s::int)::bigint,
              %(as_of)s - random() * 730 * interval '1 day', 'EUR',
              round((10 + random() * 200)::numeric, 2),
              (ARRAY['web', 'app', 'store'])[1 + floor(random() * 3)::int],
              CASE WHEN random() < 0.2 THEN 'SALE10' END
       FROM generate_series(1, %(orders)s) g""",
    """INSERT INTO order_line (order_pk, line_no, tenant_id, customer_pk, product_id, quantity,
                              unit_price)
       SELECT o.id, l, %(t)s, o.customer_pk, 'p-' || (1 + floor(random() * 200)::int),
              1 + floor(random() * 2)::int, round((5 + random() * 100)::numeric, 2)
       FROM orders o, generate_series(1, 1 + (o.id %% 4)::int) l
       WHERE o.tenant_id = %(t)s""",
    """INSERT INTO event (tenant_id, event_id, customer_pk, type, occurred_at, channel)
       SELECT %(t)s, 'e-' || g, %(first)s + floor(random() * %(n)s::int)::bigint,
              (ARRAY['page_view', 'search', 'add_to_cart', 'checkout_start', 'email_open',
                     'email_click', 'app_session', 'store_visit', 'support_contact',
                     'purchase', 'return', 'refund'])[1 + floor(random() * 12)::int],
              %(as_of)s - random() * 365 * interval '1 day', 'web'
       FROM generate_series(1, %(events)s) g""",
    """INSERT INTO review (tenant_id, review_id, customer_pk, rating, text, created_at)
       SELECT %(t)s, 'r-' || g, %(first)s + floor(random() * %(n)s::int)::bigint,
              1 + floor(random() * 5)::int, 'fine', %(as_of)s - random() * 365 * interval '1 day'
       FROM generate_series(1, %(n)s::int / 2) g""",
    """INSERT INTO transcript (tenant_id, transcript_id, customer_pk, channel, started_at)
       SELECT %(t)s, 't-' || g, %(first)s + floor(random() * %(n)s::int)::bigint, 'chat',
              %(as_of)s - random() * 365 * interval '1 day'
       FROM generate_series(1, %(n)s::int / 6) g""",
    """INSERT INTO text_analysis (tenant_id, customer_pk, source_kind, source_pk, model_version,
                                 backend, status, label, score, confidence, details, occurred_at)
       SELECT %(t)s, customer_pk, kind, id, 'lexicon-1', 'lexicon', 'ok',
              CASE WHEN s < -0.05 THEN 'negative' WHEN s > 0.05 THEN 'positive'
                   ELSE 'neutral' END, s, 0.9,
              CASE WHEN kind = 'transcript' AND s < -0.5
                   THEN '{"cues": {"refund": [1]}, "churn_risk": true}'::jsonb
                   ELSE '{}'::jsonb END, at
       FROM (SELECT customer_pk, 'review' AS kind, id, created_at AS at, random() * 2 - 1 AS s
             FROM review WHERE tenant_id = %(t)s
             UNION ALL
             SELECT customer_pk, 'transcript', id, started_at, random() * 2 - 1
             FROM transcript WHERE tenant_id = %(t)s) x""",
]


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def generate(url: str, customers: int, events: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        params: dict[str, Any] = {
            "n": customers,
            "orders": customers * 10,
            "events": customers * events,
            "as_of": AS_OF,
        }
        for statement in _GENERATE:
            params["t"] = conn.execute("SELECT max(id) FROM tenant").fetchone()[0]  # type: ignore[index]
            params["first"] = conn.execute(
                "SELECT min(id) FROM customer WHERE tenant_id = %s", [params["t"]]
            ).fetchone()[0]  # type: ignore[index]
            started = time.perf_counter()
            conn.execute(statement, params)
            log(f"  {statement.split()[:3][-1]:<14} {time.perf_counter() - started:6.1f} s")
        conn.execute("VACUUM ANALYZE")


def seconds(step: Callable[[], Result], repeats: int) -> tuple[list[float], Result]:
    times = []
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return times, result


def backend_cpu_s(session: Session) -> float:
    """CPU seconds the session's Postgres backend has used (the server runs here)."""
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, repeats: int, explain: bool) -> None:
    engine = create_engine(sqlalchemy_url(url), pool_size=1)
    with Session(engine) as session:
        tenant = session.execute(text("SELECT max(id) FROM tenant")).scalar_one()
        pks = session.execute(
            text("SELECT id FROM customer WHERE tenant_id = :t"), {"t": tenant}
        ).scalars()
        sample = random.Random(1).sample(list(pks), 210)
        counts = {
            table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("customer", "orders", "order_line", "event", "text_analysis")
        }
        log(f"rows: {counts}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        if explain:
            print_plan(session, tenant)

        def full() -> tuple[int, float]:
            cpu = backend_cpu_s(session)
            written = compute_features(session, tenant_id=tenant, as_of=AS_OF)
            session.commit()
            return written, backend_cpu_s(session) - cpu

        for _ in range(repeats):
            (wall,), (written, cpu) = seconds(full, 1)
            log(f"full compute: {written} rows in {wall:.1f} s ({cpu:.1f} s CPU in Postgres)")
        for size in (1, 10):
            times = refresh_times(
                session, tenant, [sample[i : i + size] for i in range(0, 200, size)]
            )
            log(f"refresh of {size:>2} customer(s): {_summary(times, unit='ms')}")
        times, matrix = seconds(lambda: load_matrix(session, tenant_id=tenant), repeats)
        log(f"load_matrix: {matrix.values.shape}, {_summary(times)}")
    engine.dispose()


def refresh_times(session: Session, tenant: int, batches: list[list[int]]) -> list[float]:
    """Seconds per refresh of each batch of customers, committed one by one."""
    times = []
    for pks in batches[:20]:
        started = time.perf_counter()
        compute_features(session, tenant_id=tenant, customer_pks=pks)
        session.commit()
        times.append(time.perf_counter() - started)
    return times


def print_plan(session: Session, tenant: int) -> None:
    definition = get_feature_set("v1")
    query = text(f"EXPLAIN (ANALYZE, BUFFERS) {select_sql(definition, scope='all')}")
    params = {**definition.params, "tenant_id": tenant, "as_of": AS_OF}
    params["as_of_days"] = AS_OF.timestamp() / 86400
    for name, value in FULL_RUN_SETTINGS.items():
        session.execute(
            text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
        )
    for (line,) in session.execute(query, params):
        print(line)
    session.rollback()


def _summary(times: list[float], unit: str = "s") -> str:
    scale = 1000 if unit == "ms" else 1
    median, low, high = statistics.median(times), min(times), max(times)
    return f"median {median * scale:.1f} {unit} (min {low * scale:.1f}, max {high * scale:.1f})"


@contextmanager
def database(url: str | None, keep: bool) -> Iterator[str]:
    if url:
        yield url
    elif keep:
        admin = test_environment().segmenta_test_admin_url
        name = f"segmenta_bench_features_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        kept = f"{admin.rsplit('/', 1)[0]}/{name}"
        log(f"database kept: {kept}")
        migrate(sqlalchemy_url(kept))
        yield kept
    else:
        with scratch_database("segmenta_bench_features") as scratch:
            migrate(sqlalchemy_url(scratch))
            yield scratch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10, help="events per customer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", help="an existing, migrated database")
    parser.add_argument("--reuse", action="store_true", help="time the data already in --url")
    parser.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    with database(args.url, args.keep) as url:
        if not args.reuse:
            log(f"generating {args.customers} customers")
            generate(url, args.customers, args.events)
        measure(url, args.repeats, args.explain)


if __name__ == "__main__":
    main()
