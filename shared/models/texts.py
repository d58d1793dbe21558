"""What customers say: product reviews and support transcripts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.models.base import customer_fk_field, id_field, tenant_field, timestamp_field


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
