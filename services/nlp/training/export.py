"""ONNX export of the whole model (encoder, head, softmax) and its int8 quantization."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx  # type: ignore[import-not-found, import-untyped, unused-ignore]
import onnxruntime  # type: ignore[import-not-found, import-untyped, unused-ignore]
import torch  # type: ignore[import-not-found, import-untyped, unused-ignore]
from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-not-found, import-untyped, unused-ignore]
from onnxruntime.quantization.shape_inference import quant_pre_process  # type: ignore[import-not-found, import-untyped, unused-ignore]

from services.nlp.training.model import ProbabilityModel, SentimentClassifier

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "probabilities"
OPSET = 17


def export_fp32(classifier: SentimentClassifier, path: Path) -> None:
    """Write the float model with dynamic batch and sequence axes."""
    model = ProbabilityModel(classifier).eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        model,
        (ids, mask),
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAMES[0]: axes, INPUT_NAMES[1]: axes, OUTPUT_NAME: {0: "batch"}},
        opset_version=OPSET,
        do_constant_folding=True,
        # The TorchScript exporter gives a plain graph that quantizes cleanly.
        dynamo=False,
    )
    onnx.checker.check_model(str(path))


def quantize(fp32_path: Path, int8_path: Path) -> None:
    """Dynamic int8: weights stored as int8, activations quantized on the fly per batch."""
    prepared = fp32_path.with_suffix(".prep.onnx")
    # Symbolic shape inference cannot follow the position-id slice; ONNX inference suffices.
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(
        str(prepared),
        str(int8_path),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # Embedding tables are most of the bytes; int8 rows lose almost nothing there.
        op_types_to_quantize=["MatMul", "Gather"],
    )
    prepared.unlink()


def run_onnx(path: Path, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {INPUT_NAMES[0]: ids.astype(np.int64), INPUT_NAMES[1]: mask.astype(np.int64)}
    return np.asarray(session.run([OUTPUT_NAME], feeds)[0])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
