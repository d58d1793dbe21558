"""What customers say: product reviews and support transcripts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.models.base import (
    customer_fk_field,
    id_field,
    jsonb_field,
    tenant_field,
    timestamp_field,
)


class Review(SQLModel, table=True):
    __tablename__ = "review"
    __table_args__ = (UniqueConstraint("tenant_id", "review_id"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    review_id: str = Field(max_length=128)
    customer_pk: int = customer_fk_field()
    product_id: str | None = Field(default=None, max_length=128)
    rating: int | None = None
    text: str = Field(sa_column=Column(Text, nullable=False))
    language: str | None = Field(default=None, max_length=8)
    created_at: datetime = timestamp_field()
    received_at: datetime | None = timestamp_field(server_now=True)


class Transcript(SQLModel, table=True):
    __tablename__ = "transcript"
    __table_args__ = (UniqueConstraint("tenant_id", "transcript_id"),)

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    transcript_id: str = Field(max_length=128)
    customer_pk: int = customer_fk_field()
    channel: str = Field(max_length=16)
    started_at: datetime = timestamp_field()
    received_at: datetime | None = timestamp_field(server_now=True)


class TranscriptTurn(SQLModel, table=True):
    __tablename__ = "transcript_turn"

    transcript_pk: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("transcript.id", ondelete="CASCADE"), primary_key=True
        )
    )
    turn_no: int = Field(primary_key=True)
    tenant_id: int = tenant_field()
    speaker: str = Field(max_length=16)
    text: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime | None = timestamp_field(nullable=True)


class TextAnalysis(SQLModel, table=True):
    """What one model version made of one review or transcript; a re-run upserts it.

    ``details`` holds what depends on the kind: aspects and the rating check for a
    review; turns, speakers, trajectory, cues and topics for a transcript.
    """

    __tablename__ = "text_analysis"
    __table_args__ = (
        UniqueConstraint("source_kind", "source_pk", "model_version"),
        Index("ix_text_analysis_tenant_customer", "tenant_id", "customer_pk", "occurred_at"),
    )

    id: int | None = id_field()
    tenant_id: int = tenant_field()
    customer_pk: int = customer_fk_field()
    source_kind: str = Field(max_length=16)  # "review" or "transcript"
    source_pk: int = Field(sa_column=Column(BigInteger, nullable=False))
    model_version: str = Field(max_length=96)
    backend: str = Field(max_length=16)
    status: str = Field(max_length=24)  # "ok", "unsupported_language", "empty"
    language: str | None = Field(default=None, max_length=8)
    label: str | None = Field(default=None, max_length=8)
    score: float | None = None  # -1 (negative) .. 1 (positive)
    confidence: float | None = None
    details: dict[str, Any] | None = jsonb_field()
    occurred_at: datetime = timestamp_field()  # when the customer wrote or said it
    analyzed_at: datetime | None = timestamp_field(server_now=True)
