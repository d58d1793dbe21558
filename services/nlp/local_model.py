"""The shipped sentiment model at run time: ONNX Runtime and a tokenizer, no torch.

The artefact directory (``services/nlp/model/`` by default) holds ``model.onnx`` (MiniLM
encoder, linear head and softmax, int8), ``tokenizer.json`` and ``model.json``, all written by
``python -m services.nlp.training.train``. Load it once per process.

Activations are quantized to int8 per batch, so a row's probabilities can move by a few
hundredths with the rows batched alongside it (padding included); clear texts keep
their label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime  # type: ignore[import-not-found, import-untyped, unused-ignore]
from tokenizers import Tokenizer

DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "model"
LABELS = ("negative", "neutral", "positive")


class ModelArtefactError(RuntimeError):
    """The model directory is missing a file or does not describe the expected model."""


@dataclass(frozen=True)
class _Manifest:
    version: str
    labels: tuple[str, ...]
    max_length: int
    onnx_file: str
    input_names: tuple[str, str]
    output_name: str


def _read_manifest(directory: Path) -> _Manifest:
    path = directory / "model.json"
    if not path.is_file():
        raise ModelArtefactError(f"no model.json in {directory}")
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    labels = tuple(str(label) for label in raw["labels"])
    if labels != LABELS:
        raise ModelArtefactError(f"{path}: labels {labels}, expected {LABELS}")
    inputs = raw["onnx"]["inputs"]
    return _Manifest(
        version=str(raw["version"]),
        labels=labels,
        max_length=int(raw["max_length"]),
        onnx_file=str(raw["onnx"]["file"]),
        input_names=(str(inputs[0]), str(inputs[1])),
        output_name=str(raw["onnx"]["output"]),
    )


def _providers() -> list[str]:
    available = onnxruntime.get_available_providers()
    preferred = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [provider for provider in preferred if provider in available]


class LocalSentimentModel:
    """Probabilities of negative / neutral / positive for English texts."""

    def __init__(
        self, manifest: _Manifest, session: onnxruntime.InferenceSession, tokenizer: Tokenizer
    ) -> None:
        self.version = manifest.version
        self.labels = manifest.labels
        self.max_length = manifest.max_length
        self._inputs = manifest.input_names
        self._output = manifest.output_name
        self._session = session
        self._tokenizer = tokenizer

    @classmethod
    def load(
        cls, directory: Path | None = None, *, threads: int | None = None
    ) -> LocalSentimentModel:
        """Open the artefact in ``directory``; ``threads`` caps ONNX Runtime's intra-op pool."""
        directory = directory or DEFAULT_DIRECTORY
        manifest = _read_manifest(directory)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(directory / manifest.onnx_file), sess_options=options, providers=_providers()
        )
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # Padding is done per batch below, to the batch's longest row, not to a fixed width.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=manifest.max_length)
        return cls(manifest, session, tokenizer)

    def predict_proba(
        self, texts: Sequence[str], *, batch_size: int = 64
    ) -> npt.NDArray[np.float32]:
        """An (n, 3) array of probabilities in label order, rows in the order of ``texts``."""
        if isinstance(texts, str):
            raise TypeError("predict_proba takes a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        rows = [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]
        # Similar lengths share a batch, so little time goes to padding.
        order = np.argsort([len(row) for row in rows], kind="stable")
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._run([rows[i] for i in chunk])
        return out

    def _run(self, rows: list[list[int]]) -> npt.NDArray[np.float32]:
        width = max(len(row) for row in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feeds = {self._inputs[0]: ids, self._inputs[1]: mask}
        result = self._session.run([self._output], feeds)[0]
        return np.asarray(result, dtype=np.float32)
