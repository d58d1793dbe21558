"""The ingest API in a process that expects the fake store too (``fake_store_api:app``)."""

from __future__ import annotations

from services.ingest.main import app
from tests.support.fake_store import declare

declare()  # read at each request, so declaring after the app is built is in time

__all__ = ["app"]
