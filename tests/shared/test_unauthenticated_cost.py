"""What a caller without a valid key can make an API spend: a huge header is refused after
a bounded read, and a flood of made-up keys is answered without a lookup per request."""

from __future__ import annotations

import re
import secrets
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from services.ingest.records.schemas import RECORD_MODELS, RecordKind, example_of
from shared.web.server import MAX_HEAD_BYTES
from tests.conftest import MakeKey
from tests.support.http import auth
from tests.support.servers import Process, start_api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HUGE = 64 * 1024 * 1024
PIECE = 64 * 1024


@pytest.fixture
def own_api(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Process, str]]:
    """An ingest API of this test's own: its memory and its throttle start clean."""
    process, base = start_api(env, tmp_path / "api.log")
    yield process, base
    process.stop()


def _send_huge_header(base: str) -> tuple[int, bytes]:
    """Sends a request whose one header is 64 MB; what was sent before the server
    answered or stopped reading, and the answer's first bytes."""
    host, port = base.removeprefix("http://").split(":")
    sent = 0
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.settimeout(2)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ")
        piece = b"a" * PIECE
        try:
            while sent < HUGE:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(piece)
                sent += PIECE
        except (TimeoutError, OSError):
            pass  # the server stopped reading
        try:
            answer = sock.recv(4096)
        except OSError:
            answer = b""
    return sent, answer


def test_a_64_mb_header_is_refused_after_a_bounded_read(
    own_api: tuple[Process, str],
) -> None:
    process, base = own_api
    rss_before = psutil.Process(process.proc.pid).memory_info().rss

    sent, answer = _send_huge_header(base)

    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert sent < HUGE // 4  # refused long before the end, not read to it
    grown = psutil.Process(process.proc.pid).memory_info().rss - rss_before
    assert grown < 16 * 1024 * 1024, f"the API grew by {grown} bytes"
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def test_a_head_within_the_bound_is_served(own_api: tuple[Process, str]) -> None:
    _, base = own_api
    filler = "a" * (MAX_HEAD_BYTES // 2)
    answer = httpx.get(f"{base}/healthz", headers={"X-Filler": filler}, timeout=10)
    assert answer.status_code == 200


def test_large_bodies_after_small_heads_are_not_taken_for_heads(
    own_api: tuple[Process, str], make_key: MakeKey
) -> None:
    _, base = own_api
    key = make_key("ingest:write", rate_limit_per_minute=1_000_000)
    body = b"[" + b'"' + b"x" * (4 * MAX_HEAD_BYTES) + b'"]'
    headers = {**auth(key), "Content-Type": "application/json"}
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(3):  # on one kept-alive connection
            answer = client.post("/v1/events", content=body, headers=headers)
            assert answer.status_code in (413, 422), answer.text[:300]


def _lookups(client: httpx.Client) -> float:
    """Keys looked up in the database and found unknown, from the API's /metrics."""
    text = client.get("/metrics").text
    found = re.search(r'^segmenta_auth_key_lookups_total\{outcome="unknown"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def _made_up_key() -> str:
    return f"sgm_{secrets.token_hex(6)}_{secrets.token_urlsafe(32).replace('_', '-')}"


def _post_event(client: httpx.Client, key: str) -> httpx.Response:
    event = example_of(RECORD_MODELS[RecordKind.EVENTS])
    return client.post("/v1/events", json=event, headers={"Authorization": f"Bearer {key}"})


def test_an_invalid_key_flood_is_answered_without_a_lookup_per_request(
    own_api: tuple[Process, str], make_key: MakeKey
) -> None:
    _, base = own_api
    with httpx.Client(base_url=base, timeout=30) as client:
        good = make_key("ingest:write")
        assert _post_event(client, good).status_code == 200

        # The same unknown key again and again: looked up once.
        before = _lookups(client)
        repeated = _made_up_key()
        statuses = {_post_event(client, repeated).status_code for _ in range(200)}
        assert statuses == {401}
        assert _lookups(client) - before == 1

        # A new made-up key each time, on the cached (POST) and uncached (admin) routes.
        before = _lookups(client)
        started = time.monotonic()
        answers = []
        for i in range(2_000):
            key = _made_up_key()
            if i % 2:
                answers.append(_post_event(client, key))
            else:
                headers = {"Authorization": f"Bearer {key}"}
                answers.append(client.delete("/v1/customers/c-1", headers=headers))
        elapsed = time.monotonic() - started
        looked_up = _lookups(client) - before

        # A burst of 60 lookups, then two a second: nowhere near one per request.
        assert looked_up <= 60 + 2 * elapsed + 5, (looked_up, elapsed)
        assert looked_up < len(answers) / 4
        by_status: dict[int, int] = {}
        for answer in answers:
            by_status[answer.status_code] = by_status.get(answer.status_code, 0) + 1
        assert set(by_status) == {401, 429}, by_status
        throttled = next(a for a in answers if a.status_code == 429)
        assert int(throttled.headers["Retry-After"]) >= 1
        assert throttled.json()["errors"][0]["field"] == "Authorization"

        # A key this API has already seen valid is still served from the same address.
        assert _post_event(client, good).status_code == 200
