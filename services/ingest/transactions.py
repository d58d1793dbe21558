"""The request's unit of work, retried when Postgres resolves a lock conflict by aborting it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from shared.db import session_scope

T = TypeVar("T")
_RETRYABLE = {"40001", "40P01"}  # serialization failure, deadlock detected


def run_in_transaction(engine: Engine, work: Callable[[Session], T], *, attempts: int = 4) -> T:
    for attempt in range(1, attempts + 1):
        try:
            with session_scope(engine) as session:
                return work(session)
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in _RETRYABLE or attempt == attempts:
                raise
    raise AssertionError("unreachable")
