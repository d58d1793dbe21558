"""Stored JSON shapes read through their contracts: today's and older rows read, a
malformed one fails with a message naming the row and the field."""

from __future__ import annotations

import pytest

from shared.contracts.rules import SegmentProfile, SegmentRules, SegmentStats
from shared.contracts.stored import StoredShapeError, read_stored
from shared.contracts.texts import TranscriptDetails, read_details

pytestmark = pytest.mark.unit

RULES = {
    "version": 1,
    "text": "recency_days > 120 and monetary > 800",
    "fidelity": 0.9,
    "precision": 0.8,
    "paths": [
        {
            "label": 2,
            "conditions": [
                {"feature": "recency_days", "above": 120.0, "at_most": None, "text": "a"},
                {"feature": "monetary", "above": 800.0, "at_most": None, "text": "b"},
            ],
            "text": "recency_days > 120 and monetary > 800",
            "n_customers": 40,
            "purity": 0.95,
        }
    ],
}


def test_stored_rules_round_trip_and_find_the_customers_path() -> None:
    rules = read_stored(SegmentRules, RULES, where="rules of segment 'a'")
    assert rules.model_dump(mode="json", exclude_unset=True) == RULES
    assert rules.matching_path({"recency_days": 150, "monetary": 900}) == rules.paths[0]
    assert rules.matching_path({"recency_days": 150, "monetary": 700}) is None
    assert rules.matching_path({"monetary": 900}) is None  # a missing feature holds nothing


def test_rows_stored_before_the_contract_still_read() -> None:
    rules = read_stored(SegmentRules, {"recall": 0.8, "paths": [{"text": "x > 1"}]}, where="r")
    assert (rules.fidelity, rules.version, rules.paths[0].text) == (0.8, 1, "x > 1")
    profile = read_stored(
        SegmentProfile, {"features": {"monetary": {"mean": 9.0, "lift": 1.5}}}, where="p"
    )
    assert [(f.name, f.mean, f.lift) for f in profile.features] == [("monetary", 9.0, 1.5)]
    stats = read_stored(SegmentStats, {"size": 3, "mean_clv": "n/a"}, where="s")
    assert (stats.size, stats.mean_clv) == (3, None)


@pytest.mark.parametrize(
    ("stored", "field"),
    [
        ({"paths": [{"conditions": []}]}, "paths.0.text"),
        ({"paths": "monetary > 800"}, "paths"),
        ({"fidelity": "high"}, "fidelity"),
        (
            {"paths": [{"text": "x", "conditions": [{"feature": "x", "below": 1, "text": "x"}]}]},
            "paths.0.conditions.0.below",
        ),
        ({"version": 2}, "version"),
    ],
)
def test_malformed_stored_rules_fail_naming_the_row_and_field(stored: object, field: str) -> None:
    with pytest.raises(StoredShapeError) as raised:
        read_stored(SegmentRules, stored, where="rules of segment 'a' of run 7")
    message = str(raised.value)
    assert message.startswith("rules of segment 'a' of run 7 is not a SegmentRules")
    assert field in message
    assert "monetary > 800" not in message  # stored values are never quoted


TRANSCRIPT = {
    "version": 1,
    "turns": [
        {"turn": 0, "speaker": "customer", "label": "negative", "score": -0.8},
        {"turn": 1, "speaker": "agent", "label": "positive", "score": 0.6},
        {"turn": 2, "speaker": "customer", "label": "positive", "score": 0.7},
    ],
    "speakers": {
        "customer": {
            "turns": 2,
            "label": "neutral",
            "mean_score": -0.05,
            "labels": {"negative": 1, "neutral": 0, "positive": 1},
        },
        "agent": {
            "turns": 1,
            "label": "positive",
            "mean_score": 0.6,
            "labels": {"negative": 0, "neutral": 0, "positive": 1},
        },
    },
    "cues": {"refund": [0]},
    "topics": ["delivery"],
    "escalation": False,
    "churn_risk": False,
    "trajectory": {"start": -0.8, "end": 0.7, "change": 1.5, "direction": "improved"},
    "resolved": True,
}


def test_stored_transcript_details_round_trip() -> None:
    details = read_details("transcript", TRANSCRIPT, where="details of text analysis 1")
    assert isinstance(details, TranscriptDetails)
    assert details.trajectory is not None
    assert details.trajectory.direction == "improved"
    assert details.model_dump(mode="json") == TRANSCRIPT
    unversioned = {k: v for k, v in TRANSCRIPT.items() if k != "version"}
    assert read_details("transcript", unversioned, where="d") == details
    assert read_details("transcript", {}, where="d") is None  # not scored: no details


def test_a_trajectory_without_direction_fails_naming_the_field() -> None:
    broken = {**TRANSCRIPT, "trajectory": {"start": -0.8, "end": 0.7, "change": 1.5}}
    with pytest.raises(
        StoredShapeError, match=r"analysis 9 .*trajectory\.direction: Field required"
    ):
        read_details("transcript", broken, where="details of text analysis 9")
