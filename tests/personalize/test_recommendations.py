"""Recommender runs and served recommendations, with the real API, relay and runs worker."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis import Redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from segmenta.demo_recommend import recommendations_table
from services.personalize.cache import customer_key, subject_hash
from services.personalize.recommend.tasks import schedule_retrains
from services.personalize.settings import PersonalizeSettings
from shared.db import session_scope
from tests.conftest import MakeKey
from tests.support.http import auth, count, tenant_of
from tests.support.servers import Process, service_queues, start_api, start_worker
from tests.support.stack import wait_until

pytestmark = [pytest.mark.e2e]

# Two tastes: customers c-0..c-19 buy tents and camping gear, c-20..c-39 kitchen things.
CAMPING = ["tent", "sleeping-bag", "stove", "lantern"]
KITCHEN = ["pan", "knife", "kettle", "grater"]
NAMES = {p: p.replace("-", " ").title() for p in CAMPING + KITCHEN}


@pytest.fixture(scope="module")
def recs_api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("recommend")
    relay = Process([sys.executable, "-m", "shared.relay"], env, logs / "relay.log")
    queues = service_queues("personalize")
    worker = start_worker("services.personalize.worker", queues, env, logs / "worker.log")
    api, base = start_api(env, logs / "api.log", app="services.personalize.main:app")
    yield base
    for process in (api, worker, relay):
        process.stop()


@pytest.fixture
def rclient(recs_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=recs_api, timeout=30) as client:
        yield client


def shop_with_orders(engine: Engine, tenant: int) -> None:
    """40 customers with orders 60, 35 and 10 days ago of their taste's products (the
    last after the default holdout cut of 30 days: the run's metrics score it)."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for product in CAMPING + KITCHEN:
            session.execute(
                text(
                    "INSERT INTO product (tenant_id, product_id, name, category, price)"
                    " VALUES (:t, :p, :n, 'outdoor', 10)"
                ),
                {"t": tenant, "p": product, "n": NAMES[product]},
            )
        for c in range(40):
            taste = CAMPING if c < 20 else KITCHEN
            pk = session.execute(
                text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, :c) RETURNING id"),
                {"t": tenant, "c": f"c-{c}"},
            ).scalar_one()
            # c-0 and c-20 bought one product only; the others three of their four
            bought = taste[:1] if c in (0, 20) else [taste[(c + k) % 4] for k in range(3)]
            for k, product in enumerate(bought):
                placed = now - timedelta(days=60 - 25 * k)
                order_pk = session.execute(
                    text(
                        "INSERT INTO orders (tenant_id, order_id, customer_pk, placed_at,"
                        " currency, total) VALUES (:t, :o, :c, :at, 'EUR', 10) RETURNING id"
                    ),
                    {"t": tenant, "o": f"o-{c}-{k}", "c": pk, "at": placed},
                ).scalar_one()
                session.execute(
                    text(
                        "INSERT INTO order_line (order_pk, line_no, tenant_id, customer_pk,"
                        " product_id, quantity, unit_price) VALUES (:o, 1, :t, :c, :p, 1, 10)"
                    ),
                    {"o": order_pk, "t": tenant, "c": pk, "p": product},
                )


def wait_for_run(client: httpx.Client, key: str, run_id: int, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/v1/recommenders/runs/{run_id}", headers=auth(key)).json()
        if run["status"] in ("succeeded", "failed"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not finish")


def fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


def test_a_run_trains_and_serves_lists_without_what_was_bought(
    rclient: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    tenant_name = f"recs-{uuid.uuid4().hex[:10]}"
    admin = make_key("admin", tenant=tenant_name)
    front = make_key("offers:read", tenant=tenant_name)
    shop_with_orders(engine, tenant_of(engine, admin))
    before = rclient.get("/v1/recommendations/c-1", headers=auth(front))
    assert before.status_code == 200
    assert (before.json()["model_version"], before.json()["items"]) == (None, [])

    created = rclient.post("/v1/recommenders/runs", json={}, headers=auth(admin))
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "pending"
    assert created.headers["location"] == f"/v1/recommenders/runs/{created.json()['id']}"
    run = wait_for_run(rclient, admin, created.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    evaluation, baselines = run["metrics"]["evaluation"], run["metrics"]["baselines"]
    assert evaluation["test_users"] > 0
    assert "precision_at_10" in baselines["popularity"]
    assert run["data_window"]["customers"] == 40
    assert "implicit" in run["library_versions"]

    # c-1 bought sleeping-bag, stove, lantern: the one camping product left comes first
    answer = rclient.get("/v1/recommendations/c-1", params={"n": 3}, headers=auth(front)).json()
    assert answer["customer_id"] == "c-1"
    assert answer["model_version"] == run["id"]
    products = [item["product_id"] for item in answer["items"]]
    assert len(products) == 3
    assert products[0] == "tent"
    assert not {"sleeping-bag", "stove", "lantern"} & set(products)
    assert answer["items"][0]["reason"].startswith("bought together with ")
    assert answer["items"][0]["reason"].removeprefix("bought together with ") in {
        "Sleeping Bag",
        "Stove",
        "Lantern",
    }
    # c-0 bought one product only: popular products, not what they have
    few = rclient.get("/v1/recommendations/c-0", headers=auth(front)).json()["items"]
    assert few
    assert "tent" not in {i["product_id"] for i in few}
    assert {i["reason"] for i in few} == {"popular with all shoppers"}
    # nobody the shop knows: everyone's popular products, never a 404
    stranger = rclient.get("/v1/recommendations/never-seen", headers=auth(front))
    assert stranger.status_code == 200
    assert stranger.json()["model_version"] == run["id"]
    assert len(stranger.json()["items"]) == 8


def test_the_schedule_queues_a_run_for_a_tenant_with_purchases_once(
    engine: Engine, make_key: MakeKey, env: dict[str, str]
) -> None:
    tenant = tenant_of(engine, make_key("admin", tenant=f"sched-{uuid.uuid4().hex[:10]}"))
    shop_with_orders(engine, tenant)
    settings = PersonalizeSettings(
        database_url=env["SEGMENTA_DATABASE_URL"], personalize_recs_max_runs_in_flight=5
    )
    first = schedule_retrains(engine, settings)
    assert count(engine, "recommender_run", tenant) == 1
    assert count(engine, "outbox", tenant, "task_name = 'personalize.train_recommender'") == 1
    again = schedule_retrains(engine, settings)
    assert count(engine, "recommender_run", tenant) == 1
    assert set(first).isdisjoint(again)


def test_only_an_admin_trains_and_only_offers_read_is_served(
    rclient: httpx.Client, make_key: MakeKey
) -> None:
    tenant = f"scopes-{uuid.uuid4().hex[:10]}"
    keys = {
        scope: make_key(scope, tenant=tenant)
        for scope in ("admin", "offers:read", "segments:read", "feedback:write", "ingest:write")
    }
    for scope, key in keys.items():
        post = rclient.post("/v1/recommenders/runs", json={}, headers=auth(key))
        assert post.status_code == (202 if scope == "admin" else 403), scope
        run_id = post.json()["id"] if scope == "admin" else 1
        read = rclient.get(f"/v1/recommenders/runs/{run_id}", headers=auth(key))
        assert read.status_code == (200 if scope == "admin" else 403), scope
        served = rclient.get("/v1/recommendations/c-1", headers=auth(key))
        assert served.status_code == (200 if scope in ("admin", "offers:read") else 403), scope
    assert rclient.post("/v1/recommenders/runs", json={}).status_code == 401
    assert rclient.get("/v1/recommenders/runs/1").status_code == 401
    assert rclient.get("/v1/recommendations/c-1").status_code == 401


def test_another_tenant_sees_neither_the_runs_nor_the_lists(
    rclient: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    admin = make_key("admin", tenant=f"mine-{uuid.uuid4().hex[:10]}")
    shop_with_orders(engine, tenant_of(engine, admin))
    run = rclient.post("/v1/recommenders/runs", json={}, headers=auth(admin)).json()
    assert wait_for_run(rclient, admin, run["id"])["status"] == "succeeded"
    theirs = f"theirs-{uuid.uuid4().hex[:10]}"
    other_admin = make_key("admin", tenant=theirs)
    other_front = make_key("offers:read", tenant=theirs)
    missing = rclient.get(f"/v1/recommenders/runs/{run['id']}", headers=auth(other_admin))
    assert missing.status_code == 404
    assert fields(missing) == ["run_id"]
    served = rclient.get("/v1/recommendations/c-1", headers=auth(other_front)).json()
    assert (served["model_version"], served["items"]) == (None, [])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"factors": 0}, "factors"),
        ({"cooc_weight": 1.5}, "cooc_weight"),
        ({"neighbours": -1}, "neighbours"),
        ({"neighbour_weight": "all"}, "neighbour_weight"),
        ({"holdout_days": "soon"}, "holdout_days"),
        ({"repeat_categories": "food"}, "repeat_categories"),
        ({"learning_rate": 0.1}, "learning_rate"),
        ({"tenant_id": 2}, "tenant_id"),
        ([1, 2], "body"),
    ],
)
def test_a_malformed_run_request_is_a_422_naming_the_field_and_stores_nothing(
    rclient: httpx.Client, make_key: MakeKey, engine: Engine, body: Any, field: str
) -> None:
    admin = make_key("admin", tenant=f"bad-{uuid.uuid4().hex[:10]}")
    response = rclient.post("/v1/recommenders/runs", json=body, headers=auth(admin))
    assert response.status_code == 422, response.text
    assert any(f == field or f.endswith(f".{field}") for f in fields(response)), fields(response)
    tenant = tenant_of(engine, admin)
    assert count(engine, "recommender_run", tenant) == count(engine, "outbox", tenant) == 0


def test_malformed_paths_and_queries_are_422s_naming_them(
    rclient: httpx.Client, make_key: MakeKey
) -> None:
    tenant = f"paths-{uuid.uuid4().hex[:10]}"
    admin, front = make_key("admin", tenant=tenant), make_key("offers:read", tenant=tenant)
    for path, key, field in [
        ("/v1/recommenders/runs/abc", admin, "run_id"),
        ("/v1/recommenders/runs/0", admin, "run_id"),
        ("/v1/recommendations/c-1?n=0", front, "n"),
        ("/v1/recommendations/c-1?n=many", front, "n"),
        (f"/v1/recommendations/{'x' * 129}", front, "customer_id"),
    ]:
        response = rclient.get(path, headers=auth(key))
        assert response.status_code == 422, path
        assert any(f.endswith(field) for f in fields(response)), (path, fields(response))
    raw = rclient.post(
        "/v1/recommenders/runs",
        content=b"{not json",
        headers={**auth(admin), "Content-Type": "application/json"},
    )
    assert raw.status_code == 422


def test_the_demo_prints_a_customers_recommendations_with_their_reasons(
    recs_api: str, make_key: MakeKey, engine: Engine
) -> None:
    admin = make_key("admin", tenant=f"demo-{uuid.uuid4().hex[:10]}")
    shop_with_orders(engine, tenant_of(engine, admin))
    table = recommendations_table(recs_api, admin, "c-21")
    assert isinstance(table, Table)
    console = Console(width=200, record=True)
    console.print(table)
    printed = console.export_text()
    assert "Recommendations for c-21" in printed
    # c-21 bought knife, kettle, grater: the pan, bought together with one of them
    assert "pan" in printed
    assert "bought together with" in printed


def segment_the_shop(engine: Engine, tenant: int) -> None:
    """An active segmentation: the camping customers in ``camp``, the kitchen ones (and a
    new customer ``c-new`` without orders) in ``cook``."""
    with session_scope(engine) as session:
        session.execute(
            text("INSERT INTO customer (tenant_id, customer_id) VALUES (:t, 'c-new')"),
            {"t": tenant},
        )
        run_id = session.execute(
            text(
                "INSERT INTO segmentation_run (tenant_id, status, algorithm, feature_set, seed,"
                " active) VALUES (:t, 'succeeded', 'kmeans', 'v1', 7, true) RETURNING id"
            ),
            {"t": tenant},
        ).scalar_one()
        session.execute(
            text(
                "INSERT INTO segment_membership (customer_pk, tenant_id, run_id, segment_key,"
                " since) SELECT id, tenant_id, :r, CASE WHEN customer_id IN"
                " (SELECT 'c-' || g FROM generate_series(0, 19) g) THEN 'camp' ELSE 'cook' END,"
                " now() FROM customer WHERE tenant_id = :t"
            ),
            {"t": tenant, "r": run_id},
        )


def test_customers_with_little_history_get_their_segments_popular_products(
    rclient: httpx.Client, make_key: MakeKey, engine: Engine, env: dict[str, str]
) -> None:
    tenant_name = f"segs-{uuid.uuid4().hex[:10]}"
    admin, front = (
        make_key("admin", tenant=tenant_name),
        make_key("offers:read", tenant=tenant_name),
    )
    tenant = tenant_of(engine, admin)
    shop_with_orders(engine, tenant)
    segment_the_shop(engine, tenant)
    run = rclient.post("/v1/recommenders/runs", json={}, headers=auth(admin)).json()
    assert wait_for_run(rclient, admin, run["id"])["status"] == "succeeded"

    new = rclient.get("/v1/recommendations/c-new", params={"n": 4}, headers=auth(front)).json()
    assert {i["product_id"] for i in new["items"]} == set(KITCHEN)
    assert {i["reason"] for i in new["items"]} == {"popular in your segment"}
    # a customer the run never saw, whom the personalize cache already puts in ``camp``
    walk_in = customer_key(tenant, subject_hash(env["SEGMENTA_SECRET_KEY"], "walk-in"))
    with Redis.from_url(env["SEGMENTA_REDIS_URL"]) as redis:
        redis.hset(walk_in, mapping={"segment": "camp", "consent": "1"})
    served = rclient.get("/v1/recommendations/walk-in", params={"n": 4}, headers=auth(front))
    assert served.json()["model_version"] == run["id"]
    assert {i["product_id"] for i in served.json()["items"]} == set(CAMPING)


def someone_waits_for_a_lock(engine: Engine) -> bool:
    sql = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as connection:
        return bool(connection.execute(text(sql)).scalar_one())


def run_status(engine: Engine, run_id: int) -> Any:
    sql = "SELECT status, started_at, progress, metrics FROM recommender_run WHERE id = :r"
    with engine.connect() as connection:
        return connection.execute(text(sql), {"r": run_id}).one()


def test_a_run_is_cancelled_pending_at_once_running_at_its_next_stage(
    rclient: httpx.Client, make_key: MakeKey, engine: Engine
) -> None:
    tenant_name = f"cancel-{uuid.uuid4().hex[:10]}"
    admin = make_key("admin", tenant=tenant_name)
    front = make_key("offers:read", tenant=tenant_name)
    reader = make_key("segments:read", tenant=tenant_name)
    shop_with_orders(engine, tenant_of(engine, admin))
    with engine.connect() as holder:  # the worker's run waits in its first stage
        holder.execute(text("LOCK TABLE order_line IN ACCESS EXCLUSIVE MODE"))
        running = rclient.post("/v1/recommenders/runs", json={}, headers=auth(admin)).json()["id"]
        wait_until(
            lambda: (
                run_status(engine, running).status == "running" and someone_waits_for_a_lock(engine)
            ),
            60,
            "the run to wait for the purchases",
        )
        # A second run waits for the first (one run of a tenant trains at a time).
        pending = rclient.post("/v1/recommenders/runs", json={}, headers=auth(admin)).json()["id"]
        at_once = rclient.post(f"/v1/recommenders/runs/{pending}/cancel", headers=auth(admin))
        assert at_once.status_code == 202, at_once.text
        assert (at_once.json()["status"], at_once.json()["started_at"]) == ("cancelled", None)
        asked = rclient.post(f"/v1/recommenders/runs/{running}/cancel", headers=auth(admin))
        assert asked.status_code == 202, asked.text
        assert asked.json()["status"] == "cancelling"
        holder.rollback()
    wait_until(lambda: run_status(engine, running).status == "cancelled", 60, "the run to stop")
    stopped = run_status(engine, running)
    assert stopped.progress < 0.4
    assert stopped.metrics == {"stage": "started"}
    assert run_status(engine, pending).started_at is None
    # Nothing the cancelled run learnt is served.
    served = rclient.get("/v1/recommendations/c-1", headers=auth(front)).json()
    assert (served["model_version"], served["items"]) == (None, [])
    again = rclient.post(f"/v1/recommenders/runs/{running}/cancel", headers=auth(admin))
    assert again.status_code == 409
    assert f"recommender run {running} is cancelled already" in again.json()["detail"]
    assert fields(again) == ["status"]
    path = f"/v1/recommenders/runs/{running}/cancel"
    assert rclient.post(path, headers=auth(reader)).status_code == 403
    stranger = rclient.post(path, headers=auth(make_key("admin")))
    assert stranger.status_code == 404
    assert fields(stranger) == ["run_id"]
    # A cancelled run frees its place: the tenant trains again.
    retrain = rclient.post("/v1/recommenders/runs", json={}, headers=auth(admin)).json()
    assert wait_for_run(rclient, admin, retrain["id"])["status"] == "succeeded"
