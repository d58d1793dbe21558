"""Webhook subscriptions and deliveries as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_SEGMENTS = 50


def _storable(text: str) -> bool:
    """Text Postgres can keep: no NUL, and valid UTF-8 (JSON may escape a lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://crm.example.com/hooks/segmenta", "segments": ["s1"]}]
        },
    )

    url: str = Field(min_length=1, max_length=2048, description="http(s) URL to POST to")
    segments: list[str] = Field(
        min_length=1,
        max_length=MAX_SEGMENTS,
        description="keys of the active segmentation's segments whose entries and exits are sent",
    )
    description: str | None = Field(default=None, max_length=256)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not _storable(url):
            raise ValueError("must be UTF-8 text without NUL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return url

    @field_validator("segments")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        if any(not 1 <= len(key) <= 32 or not _storable(key) for key in keys):
            raise ValueError("each key has 1 to 32 characters of UTF-8 text without NUL")
        if len(set(keys)) != len(keys):
            raise ValueError("keys are repeated")
        return keys

    @field_validator("description")
    @classmethod
    def _text(cls, description: str | None) -> str | None:
        if description is not None and not _storable(description):
            raise ValueError("must be UTF-8 text without NUL")
        return description


class WebhookPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    segments: list[str] = Field(validation_alias="segment_keys")
    description: str | None
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="signs every body (HMAC-SHA256, header X-Segmenta-Signature: "
        "sha256=<hex>); shown only now"
    )


class WebhookPage(BaseModel):
    items: list[WebhookPublic]


class DeliveryPublic(BaseModel):
    id: int
    status: str = Field(description="pending, delivered or dead (dead-lettered)")
    changes: int = Field(description="membership changes the delivery carries")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="when pending: the next attempt")
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic]
    next: int | None = Field(description="pass as `before` for the next (older) page")
