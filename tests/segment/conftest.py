"""The segment API as a real process, and a segmented shop to read through it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.builders import Shop, build_segmented_shop
from tests.support.http import tenant_of
from tests.support.servers import ROOT, start_api


class ArtifactSettings(BaseSettings):
    """Where tests leave files for people to look at (screenshots)."""

    model_config = SettingsConfigDict(extra="ignore")

    segmenta_test_artifacts: Path = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    folder = ArtifactSettings().segmenta_test_artifacts
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def segment_api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``services.segment.main:app`` under uvicorn; yields its base URL."""
    process, base = start_api(
        env, tmp_path_factory.mktemp("segment-api") / "api.log", app="services.segment.main:app"
    )
    yield base
    process.stop()


@pytest.fixture
def segment_client(segment_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=segment_api, timeout=60) as client:
        yield client


@dataclass(frozen=True)
class ShopKeys:
    shop: Shop
    reader: str  # segments:read
    admin: str


@pytest.fixture
def shop(engine: Engine, make_key: MakeKey) -> ShopKeys:
    """A fresh tenant with a segmented shop, and a reader's and an admin's key for it."""
    tenant = f"shop-{uuid.uuid4().hex[:12]}"
    reader = make_key("segments:read", tenant=tenant)
    admin = make_key("admin", tenant=tenant)
    with session_scope(engine) as session:
        built = build_segmented_shop(session, tenant_id=tenant_of(engine, reader))
    return ShopKeys(shop=built, reader=reader, admin=admin)
