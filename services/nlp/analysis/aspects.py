"""A small, configurable aspect taxonomy: which parts of a text talk about what.

A text is cut into clauses; each clause that names an aspect (by keyword) is scored on
its own, so "fast delivery but the fabric pilled" gives delivery positive and quality
negative. ``SEGMENTA_NLP_ASPECTS_FILE`` replaces the built-in taxonomy with a JSON
object ``{aspect: [keyword, ...]}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_TAXONOMY: Final[dict[str, tuple[str, ...]]] = {
    "delivery": (
        "deliver",
        "delivery",
        "shipping",
        "shipped",
        "arrive",
        "arrived",
        "parcel",
        "package",
        "courier",
        "late",
        "tracking",
        "dispatch",
    ),
    "price": (
        "price",
        "priced",
        "expensive",
        "cheap",
        "cost",
        "value for money",
        "overpriced",
        "worth",
        "sale",
        "discount",
        "voucher",
    ),
    "quality": (
        "quality",
        "material",
        "fabric",
        "stitching",
        "durable",
        "sturdy",
        "pilled",
        "pilling",
        "soft",
        "flimsy",
        "well made",
        "craftsmanship",
    ),
    "size/fit": (
        "size",
        "fit",
        "fits",
        "sizing",
        "too small",
        "too big",
        "too large",
        "tight",
        "loose",
        "runs large",
        "runs small",
        "length",
    ),
    "customer service": (
        "customer service",
        "support",
        "agent",
        "staff",
        "helpful",
        "rude",
        "service",
        "response",
        "replied",
        "answered",
    ),
    "defect": (
        "defect",
        "defective",
        "broken",
        "broke",
        "faulty",
        "damaged",
        "torn",
        "hole",
        "stopped working",
        "doesn't work",
        "ripped",
        "stain",
    ),
    "returns": ("return", "returned", "refund", "exchange"),
    "billing": ("charged", "charge", "payment", "invoice", "card", "billing"),
}
_CLAUSE_SPLIT = re.compile(
    r"(?<=[.!?;])\s+|\s+(?:but|although|though|however|yet|whereas)\s+", re.IGNORECASE
)


@dataclass(frozen=True)
class AspectTaxonomy:
    keywords: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, path: Path | None = None) -> AspectTaxonomy:
        if path is None:
            return cls(dict(DEFAULT_TAXONOMY))
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or not all(
            isinstance(words, list) and all(isinstance(w, str) for w in words)
            for words in raw.values()
        ):
            raise ValueError(f"{path}: expected a JSON object of keyword lists")
        return cls({str(name): tuple(w.lower() for w in words) for name, words in raw.items()})

    def mentioned(self, text: str) -> list[str]:
        """The aspects a text names, in taxonomy order."""
        lowered = f" {text.lower()} "
        return [
            name for name, words in self.keywords.items() if any(_has(lowered, w) for w in words)
        ]

    def clauses(self, text: str) -> list[tuple[str, list[str]]]:
        """(clause, aspects it names) for each clause that names any."""
        found = []
        for clause in _CLAUSE_SPLIT.split(text):
            clause = clause.strip()
            if clause and (aspects := self.mentioned(clause)):
                found.append((clause, aspects))
        return found


def _has(lowered: str, keyword: str) -> bool:
    # Whole words only: "late" must not match "chocolate".
    return re.search(rf"(?<![\w']){re.escape(keyword)}(?![\w'])", lowered) is not None
