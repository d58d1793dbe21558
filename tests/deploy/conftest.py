"""Fixtures for the compose deployment checks: the parsed deploy/docker-compose.yml."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.compose_support import Service, load_compose


@pytest.fixture
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture
def services() -> dict[str, Service]:
    result = load_compose()["services"]
    assert isinstance(result, dict)
    return result
