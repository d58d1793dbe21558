"""A steady mixed load on the whole platform, what the client saw, and the ledger.

The client is a careful one: a request that failed in transport or with 429/5xx is sent
again with the same ids (records are idempotent by their ids, feedback by its event id),
so that what it calls accepted is what a 2xx answered. The ledger then checks
RELIABILITY.md's promise for every stage against Postgres and Redis.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis import Redis
from sqlalchemy import Engine, text

from services.personalize.cache import DECISION_STREAM
from shared.auth import create_api_key
from shared.db import session_scope
from tests.support.chaos import Platform

RETRY = {429, 500, 502, 503, 504}
POSITIVE = ("Great quality, I love it.", "Perfect fit and fast delivery, thank you!")
NEGATIVE = ("Arrived late and broken. Terrible.", "Bad service, I want a refund.")
KINDS = ("orders", "events", "reviews", "transcripts", "offers", "feedback")


def _ts(delta_s: float = -60) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat()


@dataclass
class Sent:
    """What the client saw of one kind of request."""

    sent: int = 0
    accepted: dict[str, float] = field(default_factory=dict)  # id -> accepted at (epoch)
    statuses: Counter[str] = field(default_factory=Counter)  # every non-2xx answer
    gave_up: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass
class Shop:
    tenant_id: int
    key: str
    customers: list[str]
    secret: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])


class Client:
    """Requests with retries; one ``Sent`` per kind, shared by the load's threads."""

    def __init__(self, platform: Platform, shop: Shop, retry_for_s: float = 120) -> None:
        self.platform, self.shop, self.retry_for_s = platform, shop, retry_for_s
        self.seen = {kind: Sent() for kind in KINDS}
        self.lock = threading.Lock()
        self.local = threading.local()
        self.opened: list[httpx.Client] = []
        self.headers = {"Authorization": f"Bearer {shop.key}"}
        # Offer answers given while Redis was unreachable (logged straight to Postgres).
        self.fallbacks: set[str] = set()

    def call(
        self, kind: str, service: str, method: str, path: str, body: Any = None
    ) -> httpx.Response | None:
        seen = self.seen[kind]
        with self.lock:
            seen.sent += 1
        deadline = time.monotonic() + self.retry_for_s
        http = self._http(service)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = http.request(method, path, json=body, timeout=10)
            except httpx.TransportError as exc:
                status = type(exc).__name__
            else:
                if response.status_code < 300:
                    with self.lock:
                        seen.latencies.append(time.perf_counter() - started)
                    return response
                status = str(response.status_code)
                if response.status_code not in RETRY:
                    with self.lock:
                        seen.statuses[status] += 1
                    return None
            with self.lock:
                seen.statuses[status] += 1
            time.sleep(0.3)
        with self.lock:
            seen.gave_up += 1
        return None

    def _http(self, service: str) -> httpx.Client:
        """This thread's client for ``service`` (made once: an httpx client costs ~20 ms
        of CPU to build, which would bound the load by the client, not the platform)."""
        clients: dict[str, httpx.Client] = self.local.__dict__.setdefault("clients", {})
        if service not in clients:
            clients[service] = httpx.Client(
                base_url=self.platform.urls[service], headers=self.headers
            )
            with self.lock:
                self.opened.append(clients[service])
        return clients[service]

    def close(self) -> None:
        for http in self.opened:
            http.close()

    def accept(self, kind: str, ident: str) -> None:
        with self.lock:
            self.seen[kind].accepted[ident] = time.time()

    def record(self, kind: str, ident: str, service: str, path: str, body: Any) -> bool:
        response = self.call(kind, service, "POST", path, body)
        if response is None:
            return False
        result = response.json()
        if result.get("rejected_count"):
            with self.lock:
                self.seen[kind].statuses["rejected in body"] += 1
            return False
        self.accept(kind, ident)
        return True


class Load:
    """One thread per kind of traffic at its rate, until ``stop``."""

    def __init__(self, client: Client, rates: dict[str, float], seed: int = 7) -> None:
        self.client, self.rates = client, rates
        self.rng = random.Random(seed)
        self.counter = itertools.count()
        self.stop_event = threading.Event()
        self.decisions: list[tuple[str, str]] = []
        self.threads: list[threading.Thread] = []

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{self.client.shop.run}-{next(self.counter)}"

    def _customer(self) -> str:
        return self.rng.choice(self.client.shop.customers)

    def order(self, customer: str | None = None) -> str:
        order_id = self._id("o")
        body = {
            "order_id": order_id, "customer_id": customer or self._customer(),
            "placed_at": _ts(), "currency": "EUR", "total": 20.0, "channel": "web",
            "lines": [{"product_id": "p-1", "quantity": 1, "unit_price": 20.0}],
        }  # fmt: skip
        self.client.record("orders", order_id, "ingest", "/v1/orders", body)
        return order_id

    def event(self) -> None:
        event_id = self._id("e")
        body = {
            "event_id": event_id, "customer_id": self._customer(), "type": "page_view",
            "occurred_at": _ts(), "channel": "web",
        }  # fmt: skip
        self.client.record("events", event_id, "ingest", "/v1/events", body)

    def review(self, customer: str | None = None) -> str:
        review_id = self._id("r")
        text_ = self.rng.choice(POSITIVE + NEGATIVE)
        body = {
            "review_id": review_id, "customer_id": customer or self._customer(),
            "text": text_, "created_at": _ts(), "language": "en",
        }  # fmt: skip
        self.client.record("reviews", review_id, "ingest", "/v1/reviews", body)
        return review_id

    def transcript(self) -> None:
        transcript_id = self._id("t")
        body = {
            "transcript_id": transcript_id, "customer_id": self._customer(), "channel": "chat",
            "started_at": _ts(), "turns": [
                {"speaker": "customer", "text": self.rng.choice(NEGATIVE)},
                {"speaker": "agent", "text": "Sorry! A replacement is on its way."},
            ],
        }  # fmt: skip
        self.client.record("transcripts", transcript_id, "ingest", "/v1/transcripts", body)

    def offer(self, customer: str | None = None) -> str | None:
        path = f"/v1/offers/{customer or self._customer()}?placement=home"
        response = self.client.call("offers", "personalize", "GET", path)
        if response is None:
            return None
        answer = response.json()
        self.client.accept("offers", answer["decision_id"])
        if answer["strategy"] == "fallback":
            with self.client.lock:
                self.client.fallbacks.add(answer["decision_id"])
        if answer["offers"]:
            with self.client.lock:
                self.decisions.append((answer["decision_id"], answer["offers"][0]["offer_id"]))
        return str(answer["decision_id"])

    def feedback(self) -> None:
        with self.client.lock:
            if not self.decisions:
                return
            decision_id, offer_id = self.decisions.pop(0)
        event_id = f"fb-{decision_id}"
        body = [{"event_id": event_id, "decision_id": decision_id, "offer_id": offer_id,
                 "kind": "conversion", "value": 10.0}]  # fmt: skip
        self.client.record("feedback", event_id, "personalize", "/v1/feedback", body)

    def _loop(self, kind: str, rate: float, send: Callable[[], object]) -> None:
        interval = 1 / rate
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            send()
            next_at += interval
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def start(self, threads_per_kind: int = 1) -> None:
        """Each kind at its rate, spread over ``threads_per_kind`` closed-loop senders."""
        senders: dict[str, Callable[[], object]] = {
            "orders": self.order, "events": self.event, "reviews": self.review,
            "transcripts": self.transcript, "offers": self.offer, "feedback": self.feedback,
        }  # fmt: skip
        for kind, rate in self.rates.items():
            for _ in range(threads_per_kind):
                args = (kind, rate / threads_per_kind, senders[kind])
                thread = threading.Thread(target=self._loop, args=args)
                thread.start()
                self.threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(180)


# --- setting up a shop --------------------------------------------------------------------


def open_shop(platform: Platform, engine: Engine, customers: int = 150) -> Shop:
    """A tenant with customers, orders, an active segmentation and two offers at ``home``."""
    with session_scope(engine) as session:
        key = create_api_key(session, client="chaos", scopes=["admin"], tenant="chaos").key
        tenant_id = session.execute(text("SELECT id FROM tenant WHERE name = 'chaos'")).scalar()
    shop = Shop(int(tenant_id or 0), key, [f"c-{i:05d}" for i in range(customers)],
                platform.env["SEGMENTA_SECRET_KEY"])  # fmt: skip
    rng = random.Random(3)
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        ingest, segment = platform.urls["ingest"], platform.urls["segment"]
        personalize = platform.urls["personalize"]

        def post(url: str, body: Any) -> Any:
            response = http.post(url, json=body)
            assert response.status_code < 300, response.text
            return response.json()

        post(f"{ingest}/v1/customers", [{"customer_id": c} for c in shop.customers])
        post(f"{ingest}/v1/products", [{"product_id": "p-1", "name": "Mug", "category": "home",
                                        "price": 20.0}])  # fmt: skip
        orders = [
            {"order_id": f"setup-{c}-{n}", "customer_id": c,
             "placed_at": _ts(-86400 * rng.randint(2, 300)), "currency": "EUR",
             "total": float(rng.choice((15, 40, 120))),
             "lines": [{"product_id": "p-1", "quantity": 1, "unit_price": 20.0}]}
            for c in shop.customers for n in range(rng.randint(1, 4))
        ]  # fmt: skip
        post(f"{ingest}/v1/orders", orders)
        for offer_id in ("spring-10", "free-ship"):
            offer = {"offer_id": offer_id, "name": offer_id, "kind": "discount"}
            post(f"{personalize}/v1/offers", {**offer, "placements": ["home"]})
        placement = {"holdout_share": 0.0, "default_offer_id": "spring-10"}
        response = http.put(f"{personalize}/v1/placements/home", json=placement)
        assert response.status_code < 300, response.text
        wait_for(lambda: outbox_size(engine) == 0, 180, "the set-up's work to be done")
        run = post(f"{segment}/v1/segmentations",
                   {"algorithm": "kmeans", "k": 3, "promote": "always", "seed": 1})  # fmt: skip
        wait_for(lambda: _active(engine, shop.tenant_id) == run["id"], 180, "the segmentation")
        wait_for(lambda: outbox_size(engine) == 0, 180, "the activation's refreshes")
    return shop


def _active(engine: Engine, tenant_id: int) -> int | None:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT id FROM segmentation_run WHERE tenant_id = :t AND active"),
            {"t": tenant_id},
        ).scalar()
    return int(found) if found is not None else None


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``condition`` held; raises after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if condition():
                return time.monotonic() - started
        except Exception:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


def outbox_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox")).scalar_one())


def drained(engine: Engine, redis_url: str) -> bool:
    with engine.connect() as conn:
        owed = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM outbox)"
                " + (SELECT count(*) FROM feedback f JOIN decision d USING (decision_id)"
                "    WHERE f.applied_at IS NULL)"
            )
        ).scalar_one()
    with Redis.from_url(redis_url, socket_timeout=2) as redis:
        stream = int(redis.xlen(DECISION_STREAM))
    return int(owed) == 0 and stream == 0
