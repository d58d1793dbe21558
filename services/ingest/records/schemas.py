"""The record contract: what each kind of record looks like on the wire.

Field names are a public API that sources (shop backends, CRMs, tag managers, support
systems) program against. Unknown fields are refused rather than silently dropped, which
also stops a caller from setting server-owned fields (``tenant_id``, ``id``, ``segment``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
)

from shared.web.schema import NO_NUL, Documented

_EMAIL = re.compile(r"[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]{2,}")
_PHONE = re.compile(r"\+?[0-9 ().-]{5,32}")
MAX_AMOUNT = 1e11  # stored as numeric(14, 2)
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200


def _no_nul(value: str) -> str:
    # Postgres text cannot hold NUL; refuse it here rather than fail on insert.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# The deepest nesting of objects and arrays a free object may have, itself counted: the
# most orjson serialises, so whatever passes validation can be stored.
MAX_NESTING = 254


def _no_nul_deep(value: Any) -> Any:
    """NUL-free text and keys, numbers in range, at most ``MAX_NESTING`` levels deep.

    Walked with an explicit stack rather than recursion: a parsed file line may nest
    1,024 levels, past Python's recursion limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _no_nul(item)
        elif isinstance(item, dict | list):
            if depth > MAX_NESTING:
                raise ValueError(f"nested too deeply (at most {MAX_NESTING} levels)")
            if isinstance(item, dict):
                for key in item:
                    _no_nul(key)
                item = item.values()
            # Reversed, so the first fault in document order is the one reported.
            stack.extend((child, depth + 1) for child in reversed(item))
        elif isinstance(item, float) and abs(item) >= MAX_AMOUNT * 1e6:
            raise ValueError("number out of range")
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("is not a valid email address")
    return value


def _phone(value: str) -> str:
    if not _PHONE.fullmatch(value):
        raise ValueError("is not a valid phone number")
    return value


def _utc(value: datetime) -> datetime:
    # Stored as UTC; years far outside any shop's history are typos (and Postgres
    # refuses offsets beyond 15:59, which UTC conversion removes).
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    utc = value.astimezone(UTC)
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(f"year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return utc


def _iso_text(value: Any) -> Any:
    # JSON has no datetime: accept ISO-8601 text only, not numbers read as epoch seconds.
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO-8601 date-time string with a time zone")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(_utc),
    Documented.of(
        formatMinimum=f"{EARLIEST_YEAR}-01-01T00:00:00Z",
        formatMaximum=f"{LATEST_YEAR}-12-31T23:59:59Z",
        description=f"ISO-8601 date-time with a time zone, years {EARLIEST_YEAR} to {LATEST_YEAR}",
    ),
]
Text = Annotated[str, Strict(), AfterValidator(_no_nul), NO_NUL]
Id = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=128),
    AfterValidator(_no_nul),
    NO_NUL,
]
Short = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=32), AfterValidator(_no_nul), NO_NUL
]
Amount = Annotated[float, Strict(), Field(ge=0, lt=MAX_AMOUNT, allow_inf_nan=False)]
FreeObject = Annotated[dict[str, Any], AfterValidator(_no_nul_deep)]
Language = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerIn(Record):
    customer_id: Id
    email: (
        Annotated[
            str,
            Strict(),
            StringConstraints(max_length=320),
            AfterValidator(_email),
            Documented.of(pattern=f"^{_EMAIL.pattern}$"),
        ]
        | None
    ) = None
    phone: (
        Annotated[
            str, Strict(), AfterValidator(_phone), Documented.of(pattern=f"^{_PHONE.pattern}$")
        ]
        | None
    ) = None
    signup_at: Timestamp | None = None
    attributes: FreeObject | None = None
    consent: (
        dict[
            Annotated[str, StringConstraints(max_length=64), AfterValidator(_no_nul)],
            Annotated[bool, Strict()],
        ]
        | None
    ) = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "c-000123",
                    "email": "ada@example.com",
                    "phone": "+46 70 123 45 67",
                    "signup_at": "2025-03-14T09:26:53Z",
                    "attributes": {"country": "SE", "birth_year": 1987},
                    "consent": {"email": True, "sms": False},
                }
            ]
        }
    )


class ProductIn(Record):
    product_id: Id
    name: Annotated[Text, StringConstraints(min_length=1, max_length=512)]
    category: Annotated[Text, StringConstraints(min_length=1, max_length=128)]
    price: Amount

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product_id": "p-0042",
                    "name": "Merino crew neck",
                    "category": "knitwear",
                    "price": 79.9,
                }
            ]
        }
    )


class OrderLineIn(Record):
    product_id: Id
    quantity: Annotated[int, Strict(), Field(ge=1, le=1_000_000)]
    unit_price: Amount


class OrderIn(Record):
    order_id: Id
    customer_id: Id
    placed_at: Timestamp
    currency: Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Z]{3}$")]
    total: Amount
    channel: Short | None = None
    discount_code: Annotated[Text, StringConstraints(min_length=1, max_length=64)] | None = None
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=500)]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_id": "o-98121",
                    "customer_id": "c-000123",
                    "placed_at": "2026-10-30T18:02:11Z",
                    "currency": "EUR",
                    "total": 159.8,
                    "channel": "web",
                    "discount_code": "AUTUMN10",
                    "lines": [{"product_id": "p-0042", "quantity": 2, "unit_price": 79.9}],
                }
            ]
        }
    )


class EventType(StrEnum):
    PAGE_VIEW = "page_view"
    SEARCH = "search"
    ADD_TO_CART = "add_to_cart"
    CHECKOUT_START = "checkout_start"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    APP_SESSION = "app_session"
    STORE_VISIT = "store_visit"
    SUPPORT_CONTACT = "support_contact"
    PURCHASE = "purchase"
    RETURN = "return"
    REFUND = "refund"


class EventIn(Record):
    event_id: Id
    customer_id: Id
    type: EventType
    occurred_at: Timestamp
    channel: Short | None = None
    properties: FreeObject | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "e-5512",
                    "customer_id": "c-000123",
                    "type": "add_to_cart",
                    "occurred_at": "2026-10-30T17:55:02Z",
                    "channel": "app",
                    "properties": {"product_id": "p-0042"},
                }
            ]
        }
    )


class ReviewIn(Record):
    review_id: Id
    customer_id: Id
    product_id: Id | None = None
    rating: Annotated[int, Strict(), Field(ge=1, le=5)] | None = None
    text: Annotated[Text, StringConstraints(min_length=1, max_length=10_000)]
    language: Language | None = None
    created_at: Timestamp

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "review_id": "r-771",
                    "customer_id": "c-000123",
                    "product_id": "p-0042",
                    "rating": 2,
                    "text": "Lovely wool, but it arrived a week late and the sleeves are short.",
                    "language": "en",
                    "created_at": "2026-11-02T08:00:00Z",
                }
            ]
        }
    )


class TurnIn(Record):
    speaker: Literal["customer", "agent", "bot"]
    text: Annotated[Text, StringConstraints(min_length=1, max_length=10_000)]
    at: Timestamp | None = None


class TranscriptIn(Record):
    transcript_id: Id
    customer_id: Id
    channel: Literal["call", "chat", "email"]
    started_at: Timestamp
    turns: Annotated[list[TurnIn], Field(min_length=1, max_length=500)]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transcript_id": "t-3301",
                    "customer_id": "c-000123",
                    "channel": "chat",
                    "started_at": "2026-11-03T10:15:00Z",
                    "turns": [
                        {"speaker": "customer", "text": "My parcel is two weeks late. Again."},
                        {"speaker": "agent", "text": "I'm sorry! I've sent a replacement today."},
                        {"speaker": "customer", "text": "Thank you, that's great."},
                    ],
                }
            ]
        }
    )


class RecordKind(StrEnum):
    CUSTOMERS = "customers"
    PRODUCTS = "products"
    ORDERS = "orders"
    EVENTS = "events"
    REVIEWS = "reviews"
    TRANSCRIPTS = "transcripts"


RECORD_MODELS: dict[RecordKind, type[Record]] = {
    RecordKind.CUSTOMERS: CustomerIn,
    RecordKind.PRODUCTS: ProductIn,
    RecordKind.ORDERS: OrderIn,
    RecordKind.EVENTS: EventIn,
    RecordKind.REVIEWS: ReviewIn,
    RecordKind.TRANSCRIPTS: TranscriptIn,
}


def example_of(model: type[Record]) -> dict[str, Any]:
    """The first documented example of a record model."""
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    first = examples[0] if isinstance(examples, list) and examples else {}
    return dict(first) if isinstance(first, dict) else {}


class FieldError(BaseModel):
    field: str
    message: str


class RejectedRecord(BaseModel):
    index: int
    errors: list[FieldError]


class IngestResult(BaseModel):
    """What happened to a request's records. ``accepted`` were stored (or changed)."""

    accepted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: list[RejectedRecord] = Field(default_factory=list)
    rejected_count: int = 0


class ErrorResponse(BaseModel):
    detail: str
    errors: list[FieldError] = Field(default_factory=list)
