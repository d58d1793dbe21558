"""The embedded stack of ``segmenta up``: a real PostgreSQL and Redis in a local folder."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from sqlalchemy import create_engine, text

from segmenta.embedded import EmbeddedServices, EmbeddedStack, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MakeStack = Callable[..., EmbeddedStack]


@pytest.fixture
def make_stack() -> Iterator[MakeStack]:
    """EmbeddedStack instances that are stopped after the test, whatever happens."""
    stacks: list[EmbeddedStack] = []

    def make(data_dir: Path, **ports: int) -> EmbeddedStack:
        stacks.append(EmbeddedStack(data_dir, **ports))
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.stop()


def libpq_url(services: EmbeddedServices) -> str:
    return services.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_data_survives_a_restart(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(tmp_path / "data")
    services = stack.start()
    assert stack.start() is services  # idempotent
    assert services.database_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert services.database_url.endswith("/segmenta")
    assert services.redis_url.startswith("redis://127.0.0.1:")
    assert services.redis_url.endswith("/0")

    with psycopg.connect(libpq_url(services)) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO notes VALUES (1, 'hello'), (2, 'wörld')")
    with redis.Redis.from_url(services.redis_url) as client:
        assert client.ping()
        client.set("greeting", "hej")
        assert client.get("greeting") == b"hej"
    # The SQLAlchemy URL is what the platform uses: it must work as given.
    engine = create_engine(services.database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_database()")).scalar_one() == "segmenta"
    engine.dispose()

    stack.stop()
    assert refuses_connections(port_of(services.database_url))
    assert refuses_connections(port_of(services.redis_url))

    again = stack.start()
    with psycopg.connect(libpq_url(again)) as conn:
        rows = conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()
    assert rows == [(1, "hello"), (2, "wörld")]
    with redis.Redis.from_url(again.redis_url) as client:
        assert client.get("greeting") == b"hej"
    stack.stop()

    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    assert (tmp_path / "data" / "redis").is_dir()
    assert (tmp_path / "data" / "postgres.log").stat().st_size > 0
    assert (tmp_path / "data" / "redis.log").stat().st_size > 0


def test_stop_is_harmless_before_start_and_twice(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(tmp_path / "data")
    stack.stop()
    with stack as services, redis.Redis.from_url(services.redis_url) as client:
        assert client.ping()
    stack.stop()
    stack.stop()


def test_two_stacks_run_side_by_side(make_stack: MakeStack, tmp_path: Path) -> None:
    first = make_stack(tmp_path / "one").start()
    second = make_stack(tmp_path / "two").start()
    ports = {port_of(url) for s in (first, second) for url in (s.database_url, s.redis_url)}
    assert len(ports) == 4

    for services, name in ((first, "one"), (second, "two")):
        with psycopg.connect(libpq_url(services)) as conn:
            conn.execute("CREATE TABLE owner (name text)")
            conn.execute("INSERT INTO owner VALUES (%s)", (name,))
        with redis.Redis.from_url(services.redis_url) as client:
            client.set("owner", name)
    for services, name in ((first, "one"), (second, "two")):
        with psycopg.connect(libpq_url(services)) as conn:
            assert conn.execute("SELECT name FROM owner").fetchall() == [(name,)]
        with redis.Redis.from_url(services.redis_url) as client:
            assert client.get("owner") == name.encode()


def test_a_folder_serves_one_stack_at_a_time(make_stack: MakeStack, tmp_path: Path) -> None:
    make_stack(tmp_path / "data").start()
    with pytest.raises(RuntimeError, match="in use"):
        make_stack(tmp_path / "data").start()


def test_busy_ports_are_replaced_by_free_ones(make_stack: MakeStack, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = int(busy.getsockname()[1])
        services = make_stack(tmp_path / "data", pg_port=taken, redis_port=taken).start()
        assert taken not in {port_of(services.database_url), port_of(services.redis_url)}
        with psycopg.connect(libpq_url(services)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_requested_free_ports_are_used(make_stack: MakeStack, tmp_path: Path) -> None:
    pg_port, redis_port = free_port(), free_port()
    services = make_stack(tmp_path / "data", pg_port=pg_port, redis_port=redis_port).start()
    assert port_of(services.database_url) == pg_port
    assert port_of(services.redis_url) == redis_port


KILLED_RUN = """
    import json, os, sys
    import psycopg, redis
    from segmenta.embedded import EmbeddedStack

    services = EmbeddedStack(sys.argv[1]).start()
    with psycopg.connect(services.database_url.replace("+psycopg", "")) as conn:
        conn.execute("CREATE TABLE survivors (name text)")
        conn.execute("INSERT INTO survivors VALUES ('before the crash')")
    redis.Redis.from_url(services.redis_url).set("crash", "survived")
    print(json.dumps([services.database_url, services.redis_url]), flush=True)
    os._exit(9)  # dies without stopping anything: both servers keep running
"""


def test_servers_left_by_a_killed_run_are_replaced(make_stack: MakeStack, tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_RUN), str(data)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 9, run.stderr
    old_db_url, old_redis_url = json.loads(run.stdout)
    old_redis_pid = (data / "redis" / "redis.pid").read_text().strip()
    assert not refuses_connections(port_of(old_db_url))  # the leftovers still serve

    # Asking for the same ports proves the leftovers were shut down: they held them.
    services = make_stack(
        data, pg_port=port_of(old_db_url), redis_port=port_of(old_redis_url)
    ).start()
    assert (services.database_url, services.redis_url) == (old_db_url, old_redis_url)
    assert (data / "redis" / "redis.pid").read_text().strip() != old_redis_pid
    with psycopg.connect(libpq_url(services)) as conn:
        assert conn.execute("SELECT name FROM survivors").fetchall() == [("before the crash",)]
    with redis.Redis.from_url(services.redis_url) as client:
        assert client.get("crash") == b"survived"


def test_postgres_restarts_on_its_port_with_its_data(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(tmp_path / "data")
    url = libpq_url(stack.start())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    held = psycopg.connect(url)
    stack.restart_postgres()
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")  # a fast shutdown ends every session
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT n FROM kept").fetchall() == [(7,)]
