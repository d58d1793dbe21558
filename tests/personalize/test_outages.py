"""The storefront keeps getting answers while Postgres or Redis is cut off from the API.

The API reaches Postgres and Redis through TCP proxies whose links the test cuts; the
worker, beat and relay reach them directly, as they would on other hosts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from redis import Redis
from sqlalchemy import Engine, text

from services.personalize.cache import PlacementSnapshot, placement_key
from tests.conftest import MakeKey
from tests.personalize.conftest import Shop, start_beat_and_relay, wait
from tests.support.http import auth, tenant_of
from tests.support.servers import start_api
from tests.support.tcp_proxy import TcpProxy, tcp_proxy

pytestmark = [pytest.mark.e2e]


def _through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def _target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 0


@pytest.fixture(scope="module")
def outage_stack(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, TcpProxy, TcpProxy]]:
    logs = tmp_path_factory.mktemp("outages")
    db_url, redis_url = env["SEGMENTA_DATABASE_URL"], env["SEGMENTA_REDIS_URL"]
    with tcp_proxy(*_target(db_url)) as pg, tcp_proxy(*_target(redis_url)) as rd:
        cut_off = {
            **env,
            "SEGMENTA_DATABASE_URL": _through(db_url, pg),
            "SEGMENTA_REDIS_URL": _through(redis_url, rd),
            "SEGMENTA_PERSONALIZE_SNAPSHOT_TTL_S": "0.2",
        }
        workers = start_beat_and_relay(env, logs, worker=True)
        try:
            api, base = start_api(cut_off, logs / "api.log", app="services.personalize.main:app")
        except BaseException:  # an API that did not start leaves no worker behind
            for process in workers:
                process.stop()
            raise
        yield base, pg, rd
        for process in (api, *workers):
            process.stop()


@pytest.fixture
def outage_shop(
    outage_stack: tuple[str, TcpProxy, TcpProxy],
    make_key: MakeKey,
    env: dict[str, str],
    engine: Engine,
) -> Iterator[tuple[Shop, TcpProxy, TcpProxy]]:
    base, pg, rd = outage_stack
    tenant = f"outage-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=base, timeout=30) as client:
        shop = Shop(
            make_key("admin", tenant=tenant),
            make_key("offers:read", "feedback:write", tenant=tenant),
            client,
        )
        shop.create_offer("usual")
        shop.create_offer("safe")
        response = client.put(
            "/v1/placements/home",
            headers=auth(shop.admin),
            json={"holdout_share": 0, "default_offer_id": "safe"},
        )
        assert response.status_code == 200, response.text
        shop.serving({"usual", "safe"})
        # The offers can reach the snapshot before the default does, and the fallback
        # answers from the snapshot the API last read: wait for one with the default.
        snapshot = placement_key(tenant_of(engine, shop.admin), "home")
        with Redis.from_url(env["SEGMENTA_REDIS_URL"]) as redis:
            wait(lambda: _default_offer(redis.get(snapshot)) == "safe", 30, "the default")
        time.sleep(0.3)  # past the API's snapshot TTL (0.2 s): its next answer reads it
        assert shop.offers("warm-up").status_code == 200
        try:
            yield shop, pg, rd
        finally:
            pg.restore()
            rd.restore()


def _default_offer(raw: bytes | None) -> str | None:
    return PlacementSnapshot.model_validate_json(raw).default_offer_id if raw else None


def _logged(engine: Engine, ids: list[str]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM decision WHERE decision_id = ANY(:ids)"), {"ids": ids}
            ).scalar_one()
        )


def test_answers_keep_flowing_and_are_logged_while_postgres_is_cut_off(
    outage_shop: tuple[Shop, TcpProxy, TcpProxy], engine: Engine
) -> None:
    shop, pg, _ = outage_shop
    assert shop.offers("c-1").status_code == 200  # the storefront's key is known now
    pg.cut()
    time.sleep(2.5)  # past the API's 2 s key cache: the key cannot be looked up now
    answers = [shop.offers(f"c-{i}") for i in range(30)]
    assert [a.status_code for a in answers] == [200] * 30
    assert {a.json()["strategy"] for a in answers} == {"bandit"}
    ids = [a.json()["decision_id"] for a in answers]
    # The worker drains the stream with its own connection: every decision is logged.
    wait(lambda: _logged(engine, ids) == 30, 30, "the decisions logged")


def test_with_redis_cut_off_the_default_offer_is_served_and_logged(
    outage_shop: tuple[Shop, TcpProxy, TcpProxy], engine: Engine
) -> None:
    shop, _, rd = outage_shop
    assert shop.offers("c-1").status_code == 200
    rd.cut()
    answers = [shop.offers(f"r-{i}") for i in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    bodies = [a.json() for a in answers]
    assert {b["strategy"] for b in bodies} == {"fallback"}
    assert {tuple(o["offer_id"] for o in b["offers"]) for b in bodies} == {("safe",)}
    assert _logged(engine, [b["decision_id"] for b in bodies]) == 10  # straight to Postgres


def test_with_redis_and_postgres_cut_off_no_answer_goes_unlogged(
    outage_shop: tuple[Shop, TcpProxy, TcpProxy], engine: Engine
) -> None:
    shop, pg, rd = outage_shop
    assert shop.offers("c-1").status_code == 200  # the storefront's key is known now
    rd.cut()
    pg.cut()
    answers = [shop.offers(f"u-{i}") for i in range(3)]
    # Nothing can log the decision: a 503 to retry, not a 200 that would be lost.
    assert [a.status_code for a in answers] == [503] * 3
    assert all(a.headers.get("Retry-After") for a in answers)
    pg.restore()
    retried = shop.offers("u-0")  # as the storefront does: Postgres logs it now
    assert retried.status_code == 200
    assert retried.json()["strategy"] == "fallback"
    assert _logged(engine, [retried.json()["decision_id"]]) == 1
