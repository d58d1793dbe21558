"""What the analyzer makes of reviews and transcripts (the VADER backend: fast, fixed)."""

from __future__ import annotations

import pytest

from services.nlp.analysis.analyzer import Analyzer
from services.nlp.analysis.aspects import AspectTaxonomy
from services.nlp.analysis.language import detect_language
from services.nlp.analysis.results import ReviewText, Turn
from services.nlp.backends.lexicon import LexiconBackend

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(LexiconBackend(), AspectTaxonomy.load())


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The delivery was fast and the sweater is lovely.", "en"),
        ("Great quality", "en"),
        ("Leveransen var en vecka försenad.", "sv"),
        ("Kvaliteten är sämre än väntat och priset är på tok för högt.", "sv"),
        ("배송이 빠르고 품질이 좋아요.", "ko"),
        ("", None),
    ],
)
def test_language_is_detected_offline(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_reviews_in_other_languages_get_no_confident_wrong_label(analyzer: Analyzer) -> None:
    swedish, korean = analyzer.reviews(
        [ReviewText("Materialet känns mjukt och gediget."), ReviewText("정말 마음에 들어요!")]
    )
    assert (swedish.status, swedish.language, swedish.sentiment) == (
        "unsupported_language",
        "sv",
        None,
    )
    assert (korean.status, korean.language, korean.sentiment) == (
        "unsupported_language",
        "ko",
        None,
    )


def test_aspects_get_their_own_polarity(analyzer: Analyzer) -> None:
    (result,) = analyzer.reviews(
        [ReviewText("The delivery was quick and great, but the fabric quality is terrible.")]
    )
    aspects = {a["aspect"]: a["label"] for a in result.details["aspects"]}
    assert aspects == {"delivery": "positive", "quality": "negative"}


def test_a_glowing_text_under_one_star_is_flagged(analyzer: Analyzer) -> None:
    praised, panned = analyzer.reviews(
        [
            ReviewText("Absolutely love it, wonderful and perfect!", rating=1),
            ReviewText("Absolutely love it, wonderful and perfect!", rating=5),
        ]
    )
    assert praised.details["rating_mismatch"] is True
    assert panned.details["rating_mismatch"] is False


def test_a_transcript_that_turns_from_angry_to_satisfied_shows_the_trajectory(
    analyzer: Analyzer,
) -> None:
    turns = [
        Turn("customer", "My parcel is two weeks late. This is ridiculous and terrible."),
        Turn("agent", "I'm so sorry about this. Let me look into it right away."),
        Turn("customer", "Honestly, I expected a lot better. Awful service."),
        Turn("agent", "I've sent a replacement by express today, free of charge."),
        Turn("customer", "Okay, that's a fair solution. Thank you, really great help!"),
    ]
    (result,) = analyzer.transcripts([turns])
    trajectory = result.details["trajectory"]
    assert trajectory["direction"] == "improved"
    assert trajectory["start"] < 0 < trajectory["end"]
    assert result.details["resolved"] is True
    assert result.details["speakers"]["customer"]["turns"] == 3
    assert result.details["speakers"]["agent"]["turns"] == 2
    assert "delivery" in result.details["topics"]


def test_agent_turns_never_count_as_the_customers_mood(analyzer: Analyzer) -> None:
    neutral_customer = [Turn("customer", "What is the order status?")]
    cheerful_agent = [Turn("agent", "Wonderful, great, fantastic, happy to help, love it!")]
    (alone,) = analyzer.transcripts([neutral_customer])
    (with_agent,) = analyzer.transcripts([neutral_customer + cheerful_agent])
    assert alone.sentiment == with_agent.sentiment
    assert with_agent.details["speakers"]["agent"]["label"] == "positive"


def test_escalation_and_churn_cues_are_found_in_customer_turns(analyzer: Analyzer) -> None:
    (result,) = analyzer.transcripts(
        [
            [
                Turn("customer", "You charged my card twice. Fix it right now."),
                Turn("agent", "I'm afraid I can only offer store credit; ask my manager."),
                Turn("customer", "This is unacceptable. Cancel my membership, I'm switching."),
            ]
        ]
    )
    cues = result.details["cues"]
    assert set(cues) == {"complaint", "cancel", "competitor"}  # "manager" was the agent's
    assert result.details["escalation"] is True
    assert result.details["churn_risk"] is True
    assert result.details["resolved"] is False
    assert result.details["trajectory"]["direction"] in {"steady", "worsened"}
