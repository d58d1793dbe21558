"""The malformed-input corpus, and each case run through the validation layer (no server)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from services.ingest.records.schemas import IngestResult, RecordKind
from services.ingest.records.validation import ValidatedBatch, parse_json, validate_batch
from shared.settings import LimitSettings
from shared.web.errors import ApiError
from tests.ingest import corpus
from tests.ingest.corpus import (
    BODY_LIMIT,
    CATEGORIES,
    KINDS,
    MAX_ITEMS,
    RECORD_LIMIT,
    TRANSCRIPT_LIMIT,
    Case,
    assert_field_named,
    build_corpus,
    dumps,
    padded,
)

pytestmark = pytest.mark.unit

CORPUS = build_corpus()
LIMITS = LimitSettings(
    max_record_bytes=RECORD_LIMIT,
    max_transcript_bytes=TRANSCRIPT_LIMIT,
    max_body_bytes=BODY_LIMIT,
    max_batch_items=MAX_ITEMS,
)
STATUSES = frozenset({200, 413, 415, 422})


def category(case: Case) -> str:
    return case.name.split(":", 1)[0]


# Cases the validation layer gets wrong today (validation.py/schemas.py), by exact name.
def validation_params() -> list[Any]:
    # Bodies over the limit never reach validation: the body reader refuses them first.
    return [pytest.param(case, id=case.name) for case in CORPUS if len(case.body) <= BODY_LIMIT]


def validate(kind: str, body: bytes) -> tuple[int, dict[str, Any], ValidatedBatch | None]:
    """The status and error body the HTTP layer would send, as the validation layer decides."""
    try:
        batch = validate_batch(RecordKind(kind), parse_json(body), LIMITS)
    except ApiError as exc:
        return exc.status_code, {"detail": exc.detail, "errors": exc.errors}, None
    result = IngestResult(rejected=batch.rejected, rejected_count=len(batch.rejected))
    return 200, result.model_dump(mode="json"), batch


# --- the corpus itself --------------------------------------------------------------------------


def test_corpus_is_large() -> None:
    assert len(CORPUS) >= 1_000


def test_names_are_unique() -> None:
    duplicates = [name for name, n in Counter(c.name for c in CORPUS).items() if n > 1]
    assert not duplicates


def test_covers_every_kind_in_every_category() -> None:
    seen = {(category(c), c.kind) for c in CORPUS}
    missing = {(cat, kind) for cat in CATEGORIES for kind in KINDS} - seen
    assert not missing
    assert {c.kind for c in CORPUS} == {kind.value for kind in RecordKind}
    assert {category(c) for c in CORPUS} == set(CATEGORIES)


def test_is_deterministic() -> None:
    corpus._build.cache_clear()
    corpus.fields.cache_clear()
    assert build_corpus() == CORPUS


def test_cases_are_well_formed() -> None:
    for case in CORPUS:
        assert case.name.split(":")[1] == case.kind, case.name
        assert case.expect, case.name
        assert case.expect <= STATUSES, case.name
        assert isinstance(case.body, bytes), case.name
        assert case.content_type, case.name
        if category(case) == "mixed":
            assert case.expect == {200}, case.name
            assert case.field is None, case.name
        if category(case) == "size":
            assert case.expect == {413}, case.name
        if category(case) == "ctype":
            assert case.content_type != "application/json", case.name
        else:
            assert case.content_type == "application/json", case.name


def test_only_body_limit_cases_are_left_to_the_body_reader() -> None:
    over = [c for c in CORPUS if len(c.body) > BODY_LIMIT]
    assert over
    assert all(category(c) == "size" and c.expect == {413} for c in over)
    assert {c.kind for c in over} == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_size_cases_sit_on_the_record_limit(kind: str) -> None:
    limit = TRANSCRIPT_LIMIT if kind == RecordKind.TRANSCRIPTS else RECORD_LIMIT
    status, _, _ = validate(kind, dumps(padded(kind, limit)))
    assert status in {200, 422}  # a field may refuse that much text, but the size is fine
    assert validate(kind, dumps(padded(kind, limit + 1)))[0] == 413


def test_required_categories_hold_what_the_contract_asks_for() -> None:
    names = " ".join(c.name for c in CORPUS)
    for needle in (
        "nested-arrays-10000", "top-10-pow-400", "top-1e400", "string-ff", "string-overlong",
        "string-lone-high-surrogate", "string-raw-nul", "nul-escaped", "bom", "single-quotes",
        "literal-0-NaN", "line-comment", "empty", "whitespace", "batch-2501-minimal",
        "record-33KiB", f"body-over-{BODY_LIMIT}", "lines:empty", "turns:empty",
        "lines:too-many-501", "tenant_id", "__proto__", "customer_pk", "2026-01-01T00-00-00",
    ):  # fmt: skip
        assert needle in names, needle


# --- the field check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"detail": "x", "errors": [{"field": "customer_id", "message": "m"}]}, "customer_id"),
        ({"detail": "x", "errors": [{"field": "0.customer_id", "message": "m"}]}, "customer_id"),
        ({"detail": "x", "errors": [{"field": "lines.0.quantity", "message": "m"}]}, "lines"),
        ({"detail": "x", "errors": [{"field": "3.lines.0.quantity", "message": "m"}]},
         "lines.0.quantity"),
        ({"rejected": [{"index": 1, "errors": [{"field": "tenant_id", "message": "m"}]}]},
         "tenant_id"),
        ({"detail": "invalid: body is empty"}, "body"),
    ],
)  # fmt: skip
def test_assert_field_named_accepts(body: object, field: str) -> None:
    assert_field_named(body, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"detail": "x", "errors": [{"field": "customer_id", "message": "m"}]}, "id"),
        ({"detail": "x", "errors": [{"field": "email", "message": "tenant_id"}]}, "tenant_id"),
        ({"detail": "x", "errors": []}, "price"),
        ({"detail": "x", "errors": [{"field": "lines.0", "message": "m"}]}, "lines.0.quantity"),
    ],
)
def test_assert_field_named_refuses(body: object, field: str) -> None:
    with pytest.raises(AssertionError):
        assert_field_named(body, field)


# --- each case through the validation layer ------------------------------------------------------


@pytest.mark.parametrize("case", validation_params())
def test_validation_layer_answers(case: Case) -> None:
    """Only ``ApiError`` may escape (anything else is a 500), with an expected status."""
    status, body, batch = validate(case.kind, case.body)
    assert status in case.expect, f"{status}, expected {sorted(case.expect)}: {body}"
    if case.field is not None:
        assert_field_named(body, case.field)
    if batch is not None:  # a mixed batch: some records stored, the others listed
        assert batch.records
        assert body["rejected"]
        assert body["rejected_count"] == len(body["rejected"])
