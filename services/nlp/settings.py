"""The nlp service's settings: the platform's, plus the sentiment backend and its limits."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from shared.settings import Settings


class NlpSettings(Settings):
    nlp_backend: Literal["local", "openai", "lexicon"] = "local"
    # The shipped int8 model when unset; a directory with the same files otherwise.
    nlp_model_dir: Path | None = None
    nlp_batch_size: int = Field(default=64, ge=1, le=1024)
    # ONNX Runtime threads per process; None lets it use every core.
    nlp_threads: int | None = Field(default=None, ge=1)
    # A JSON object {aspect: [keyword, ...]} replacing the built-in aspect taxonomy.
    nlp_aspects_file: Path | None = None

    # Any OpenAI-compatible chat-completions endpoint (hosted, vLLM, llama.cpp, ...).
    openai_base_url: str | None = None
    openai_model: str | None = None
    openai_api_key: SecretStr | None = None
    openai_timeout_s: float = Field(default=30.0, gt=0)
    openai_max_retries: int = Field(default=3, ge=0)
    openai_max_output_tokens: int = Field(default=512, ge=16)
    # Rough cap on the tokens one task may spend (prompt + answer, all attempts).
    openai_token_budget: int = Field(default=50_000, ge=100)
    openai_texts_per_call: int = Field(default=8, ge=1)

    @model_validator(mode="after")
    def _openai_needs_endpoint(self) -> Self:
        if self.nlp_backend == "openai" and not (self.openai_base_url and self.openai_model):
            raise ValueError(
                "SEGMENTA_NLP_BACKEND=openai needs SEGMENTA_OPENAI_BASE_URL and "
                "SEGMENTA_OPENAI_MODEL"
            )
        return self


@lru_cache(maxsize=1)
def get_nlp_settings() -> NlpSettings:
    return NlpSettings()
