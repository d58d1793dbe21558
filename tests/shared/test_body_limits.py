"""Every API refuses an oversized body with a JSON 413, and a client that writes the whole
body before it reads (urllib, http.client) gets that answer, not a connection reset."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import MakeKey
from tests.shared.conftest import PlatformApi

pytestmark = pytest.mark.e2e

APIS = ("ingest", "segment", "nlp", "personalize")
TEN_MB = 10_000_000
PIECE = 64 * 1024


def _pieces() -> Iterator[bytes]:
    """10 MB without a declared length: urllib sends it chunked."""
    piece = b" " * PIECE
    for _ in range(TEN_MB // PIECE):
        yield piece


def _post(api: PlatformApi, key: str, *, chunked: bool) -> tuple[int, str, bytes]:
    """What urllib (which says ``Connection: close``) gets for a 10 MB JSON body: status,
    content type and body."""
    request = urllib.request.Request(
        f"{api.base}{api.post_path}",
        data=_pieces() if chunked else b" " * TEN_MB,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers["content-type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], error.read()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("name", APIS)
def test_a_10_mb_body_gets_a_json_413_not_a_connection_reset(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey, name: str, chunked: bool
) -> None:
    api = platform_apis[name]
    try:
        status, content_type, raw = _post(api, make_key(api.scope), chunked=chunked)
    except (ConnectionError, urllib.error.URLError) as error:
        pytest.fail(f"{name}: the client got {error!r} instead of the 413")
    assert (status, content_type) == (413, "application/json"), raw[:200]
    body: dict[str, Any] = json.loads(raw)
    assert body["detail"].startswith("request body is larger than")
    assert body["errors"][0]["field"] == "body"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("name", APIS)
def test_an_oversized_body_is_answered_in_the_one_json_error_shape(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey, name: str, chunked: bool
) -> None:
    api = platform_apis[name]
    body = b" " * 1_000_000
    response = httpx.post(
        f"{api.base}{api.post_path}",
        content=iter([body]) if chunked else body,
        headers={
            "Authorization": f"Bearer {make_key(api.scope)}",
            "Content-Type": "application/json",
        },
        timeout=60,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"detail", "errors"}
    assert answer["errors"] == [{"field": "body", "message": answer["errors"][0]["message"]}]
    assert "bytes" in answer["detail"]
