"""Schemathesis against personalize's OpenAPI document, with a key that holds the admin
and the storefront scopes (every route is reachable).

Generated requests (valid and invalid) must never produce a 5xx, and every answer must
match what the OpenAPI document promises (status codes, content types, bodies).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MakeKey

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_personalize_conforms_to_its_openapi_document(
    personalize_api: str, make_key: MakeKey
) -> None:
    key = make_key("admin", "offers:read", "feedback:write", rate_limit_per_minute=1_000_000)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{personalize_api}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "all",
            "--exclude-checks",
            # GET /v1/offers/{customer_id} (storefront) and PUT/DELETE /v1/offers/{offer_id}
            # are one path template in OpenAPI but two routes for Starlette, which answers
            # an unsupported method with the Allow header of the first route matching the
            # path alone: not a promise the API breaks, so not checked.
            "positive_data_acceptance,allow_header_conformance",
            "--max-examples",
            "40",
            "--seed",
            "20261206",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
