"""Schemathesis against the live API's OpenAPI document, authenticated as an admin.

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


def test_api_conforms_to_its_openapi_document(api: str, make_key: MakeKey) -> None:
    key = make_key("admin", rate_limit_per_minute=1_000_000)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{api}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "40",
            "--seed",
            "20261122",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
