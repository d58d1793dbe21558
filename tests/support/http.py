"""Small helpers for talking to the API in tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def tenant_of(engine: Engine, key: str) -> int:
    prefix = key.split("_")[1]
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT tenant_id FROM api_key WHERE prefix = :p"), {"p": prefix}
            ).scalar_one()
        )


def count(engine: Engine, table: str, tenant_id: int, where: str = "TRUE", **params: Any) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :tenant AND {where}"),
                {"tenant": tenant_id, **params},
            ).scalar_one()
        )


def assert_nothing_stored(engine: Engine, tenant: int) -> None:
    """No event, customer or outbox row of ``tenant``: a refused request left nothing."""
    assert count(engine, "event", tenant) == 0
    assert count(engine, "customer", tenant) == 0
    assert count(engine, "outbox", tenant) == 0
