"""A support contact turn by turn: moods per speaker, the customer's trajectory, cues.

Agent and bot turns are scored (a desk may want to see them) but never count towards
the customer's mood: an apologetic agent is no sign of an unhappy customer.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from services.nlp.analysis.aspects import AspectTaxonomy
from services.nlp.analysis.results import STEADY, Turn, mean_sentiment
from services.nlp.backends.base import Sentiment
from shared.contracts.texts import LabelCounts, SpeakerMood, TranscriptDetails, TurnMood
from shared.contracts.texts import Trajectory as TrajectoryContract

CUES: Final[dict[str, re.Pattern[str]]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "cancel": r"\bcancel\w*|\bclose my account|\bunsubscribe|\bterminate",
        "refund": r"\brefund\w*|\bmoney back|\bchargeback",
        "complaint": r"\bcomplain\w*|\bunacceptable|\bridiculous|\bunbelievable|\bdisgrace\w*",
        "competitor": r"\bcompetitor\w*|\bswitch(?:ing)?\b|\bbuy from \w+|\bgo(?:ing)? elsewhere",
        "manager": r"\bmanager\b|\bsupervisor|\bescalat\w*|\bteam lead",
    }.items()
}
CHURN_CUES: Final = frozenset({"cancel", "competitor"})
ESCALATION_CUES: Final = frozenset({"manager", "complaint"})


def _thirds(scores: list[float]) -> tuple[float, float]:
    size = max(1, math.ceil(len(scores) / 3))
    start, end = scores[:size], scores[-size:]
    return sum(start) / len(start), sum(end) / len(end)


def trajectory(customer: list[Sentiment]) -> TrajectoryContract:
    """The first third of the customer's turns against the last third."""
    start, end = _thirds([s.score for s in customer])
    change = end - start
    direction = "steady" if abs(change) < STEADY else ("improved" if change > 0 else "worsened")
    return TrajectoryContract(
        start=round(start, 4), end=round(end, 4), change=round(change, 4), direction=direction
    )


def _speakers(turns: list[Turn], scored: list[Sentiment]) -> dict[str, SpeakerMood]:
    by_speaker: dict[str, list[Sentiment]] = {}
    for turn, sentiment in zip(turns, scored, strict=True):
        by_speaker.setdefault(turn.speaker, []).append(sentiment)
    summary = {}
    for speaker, sentiments in by_speaker.items():
        mood = mean_sentiment(sentiments)
        counts = {
            label: sum(s.label == label for s in sentiments)
            for label in ("negative", "neutral", "positive")
        }
        summary[speaker] = SpeakerMood(
            turns=len(sentiments),
            label=mood.label,
            mean_score=round(mood.score, 4),
            labels=LabelCounts.model_validate(counts),
        )
    return summary


def _cues(turns: list[Turn]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for number, turn in enumerate(turns):
        if turn.speaker != "customer":
            continue
        for name, pattern in CUES.items():
            if pattern.search(turn.text):
                found.setdefault(name, []).append(number)
    return found


def transcript_details(
    turns: list[Turn], scored: list[Sentiment], aspects: AspectTaxonomy
) -> tuple[Sentiment | None, dict[str, Any]]:
    """The customer's overall mood (None without customer turns) and the details, as
    stored (the ``TranscriptDetails`` contract, dumped to JSON)."""
    customer_numbers = [i for i, t in enumerate(turns) if t.speaker == "customer"]
    customer = [scored[i] for i in customer_numbers]
    cues = _cues(turns)
    mood, moved, resolved = None, None, None
    if customer:
        last = customer_numbers[-1]
        open_cues = {name for name, numbers in cues.items() if last in numbers}
        mood, moved = mean_sentiment(customer), trajectory(customer)
        # Resolved: the customer's last word is not negative and asks for nothing more.
        resolved = customer[-1].label != "negative" and not open_cues
    details = TranscriptDetails(
        turns=tuple(
            TurnMood(turn=i, speaker=t.speaker, label=s.label, score=round(s.score, 4))
            for i, (t, s) in enumerate(zip(turns, scored, strict=True))
        ),
        speakers=_speakers(turns, scored),
        cues={name: tuple(numbers) for name, numbers in cues.items()},
        topics=tuple(aspects.mentioned(" \n ".join(t.text for t in turns))),
        escalation=bool(ESCALATION_CUES & cues.keys()),
        churn_risk=bool(CHURN_CUES & cues.keys()),
        trajectory=moved,
        resolved=resolved,
    )
    return mood, details.model_dump(mode="json")
