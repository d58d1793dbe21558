"""Tenants, API keys and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.models.base import id_field, jsonb_field, tenant_field, timestamp_field


class Tenant(SQLModel, table=True):
    __tablename__ = "tenant"

    id: int | None = id_field()
    name: str = Field(max_length=128, unique=True)
    created_at: datetime | None = timestamp_field(server_now=True)


class ApiKey(SQLModel, table=True):
    """A client's key. Only a hash of the secret is stored; the key is shown once."""

    __tablename__ = "api_key"

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    client: str = Field(max_length=128)
    prefix: str = Field(max_length=32, unique=True)
    secret_hash: str = Field(max_length=128)
    scopes: list[str] = Field(sa_column=Column(ARRAY(String(32)), nullable=False))
    rate_limit_per_minute: int | None = None
    created_at: datetime | None = timestamp_field(server_now=True)
    revoked_at: datetime | None = timestamp_field(nullable=True)


class AuditLog(SQLModel, table=True):
    """Who did what. ``target`` holds hashed subjects, never personal data."""

    __tablename__ = "audit_log"

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64)
    target: str | None = Field(default=None, max_length=128)
    detail: dict[str, Any] | None = jsonb_field()
    at: datetime | None = timestamp_field(server_now=True)


class Suppression(SQLModel, table=True):
    """Erased customers, by keyed hash of their id: later records for them are not stored."""

    __tablename__ = "suppression"
    __table_args__ = (UniqueConstraint("tenant_id", "subject_hash"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    subject_hash: str = Field(max_length=64)
    created_at: datetime | None = timestamp_field(server_now=True)
