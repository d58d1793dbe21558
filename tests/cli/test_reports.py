"""The demo's sentiment summary, read from analyses the nlp analyzer made."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from rich.console import Console
from sqlalchemy import Engine

from segmenta.reports import sentiment_summary
from services.nlp.analysis.analyzer import Analyzer
from services.nlp.analysis.aspects import AspectTaxonomy
from services.nlp.analysis.results import Analysis, ReviewText, Turn
from services.nlp.backends.lexicon import LexiconBackend
from shared.contracts.stored import StoredShapeError
from shared.db import session_scope
from shared.models import Customer, Tenant, TextAnalysis

pytestmark = pytest.mark.integration

TURNS = [
    Turn("customer", "My parcel is two weeks late. This is ridiculous and terrible."),
    Turn("agent", "I'm so sorry about this. Let me look into it right away."),
    Turn("customer", "Honestly, I expected a lot better. Awful service."),
    Turn("agent", "I've sent a replacement by express today, free of charge."),
    Turn("customer", "Okay, that's a fair solution. Thank you, really great help!"),
]


def _store(engine: Engine, analyses: list[tuple[str, Analysis]]) -> str:
    """A tenant whose texts have these analyses, stored as the nlp worker stores them."""
    name = f"shop-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as session:
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        customer = Customer(tenant_id=tenant.id, customer_id="c-1")
        session.add(customer)
        session.flush()
        assert customer.id is not None
        for source_pk, (kind, analysis) in enumerate(analyses, start=1):
            mood = analysis.sentiment
            session.add(
                TextAnalysis(
                    tenant_id=tenant.id,
                    customer_pk=customer.id,
                    source_kind=kind,
                    source_pk=source_pk,
                    model_version=f"lexicon-{name}",  # the key is global, not per tenant
                    backend="lexicon",
                    status=analysis.status,
                    language=analysis.language,
                    label=mood.label if mood else None,
                    score=mood.score if mood else None,
                    details=analysis.details,
                    occurred_at=datetime.now(UTC),
                )
            )
    return name


def _rows(engine: Engine, tenant: str) -> list[list[str]]:
    console = Console(record=True, width=200)
    console.print(sentiment_summary(engine, tenant=tenant))
    lines = console.export_text().splitlines()
    rows = [line.replace("┃", "│") for line in lines if line.startswith(("┃", "│"))]
    return [[cell.strip() for cell in row.split("│")[1:-1]] for row in rows]


def test_the_summary_counts_what_the_stored_details_say(engine: Engine) -> None:
    analyzer = Analyzer(LexiconBackend(), AspectTaxonomy.load())
    (call,) = analyzer.transcripts([TURNS])
    praised, empty = analyzer.reviews(
        [ReviewText("Absolutely love it, wonderful and perfect!", rating=1), ReviewText(" ")]
    )
    tenant = _store(engine, [("transcript", call), ("review", praised), ("review", empty)])
    rows = _rows(engine, tenant)
    header, data = rows[0], rows[1:]
    assert header[:4] == ["kind", "status", "label", "count"]
    by_group = {tuple(row[:3]): dict(zip(header[3:], row[3:], strict=True)) for row in data}
    assert (
        by_group["transcript", "ok", call.sentiment.label if call.sentiment else "-"][
            "mood improved"
        ]
        == "1"
    )
    assert by_group["review", "ok", "positive"]["vs stars"] == "1"
    assert by_group["review", "empty", "-"]["count"] == "1"


def test_a_malformed_stored_trajectory_fails_naming_the_analysis(engine: Engine) -> None:
    analyzer = Analyzer(LexiconBackend(), AspectTaxonomy.load())
    (call,) = analyzer.transcripts([TURNS])
    broken = {**call.details, "trajectory": {"direction": "sideways"}}
    tenant = _store(engine, [("transcript", Analysis(call.status, "en", call.sentiment, broken))])
    with pytest.raises(StoredShapeError, match=r"details of text analysis \d+ .*trajectory"):
        sentiment_summary(engine, tenant=tenant)
