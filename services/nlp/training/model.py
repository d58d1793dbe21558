"""The classifier (MiniLM encoder, mean pooling, linear head) and its training loop (torch).

Two CPU cores make every step count, so:
* batches are padded to their own longest row, and rows of similar length share a batch;
* the word embeddings and the lowest ``frozen_layers`` transformer layers stay as
  pre-trained: their output is computed once per row before training, and each step
  runs (and back-propagates through) only the layers above.
"""

# mypy: allow-subclassing-any, allow-untyped-decorators

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch  # type: ignore[import-not-found, import-untyped, unused-ignore]
from tokenizers import Tokenizer
from torch import nn  # type: ignore[import-not-found, import-untyped, unused-ignore]
from transformers import AutoModel  # type: ignore[import-not-found, import-untyped, unused-ignore]

from services.nlp.training.data import Example


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 2.0
    batch_size: int = 32
    max_length: int = 128
    encoder_lr: float = 8e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    label_smoothing: float = 0.05
    dropout: float = 0.1
    frozen_layers: int = 2


class SentimentClassifier(nn.Module):
    """Logits for [negative, neutral, positive] from token ids."""

    def __init__(
        self, encoder: nn.Module, num_labels: int = 3, dropout: float = 0.1, frozen_layers: int = 0
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.frozen_layers = frozen_layers
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        return self._pool_and_classify(states, attention_mask)

    def freeze_lower(self) -> None:
        self.encoder.embeddings.requires_grad_(False)
        for layer in self.encoder.encoder.layer[: self.frozen_layers]:
            layer.requires_grad_(False)

    @torch.no_grad()
    def lower(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Hidden states after the frozen layers: computed once per row, never trained."""
        hidden = self.encoder.embeddings(input_ids=input_ids)
        return self._layers(hidden, attention_mask, 0, self.frozen_layers)

    def upper(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits from the output of ``lower``: the same as ``forward`` on the same rows."""
        states = self._layers(hidden, attention_mask, self.frozen_layers, None)
        return self._pool_and_classify(states, attention_mask)

    def _layers(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int | None
    ) -> torch.Tensor:
        extended = self.encoder.get_extended_attention_mask(attention_mask, attention_mask.shape)
        for layer in self.encoder.encoder.layer[start:stop]:
            output = layer(hidden, attention_mask=extended)
            hidden = output[0] if isinstance(output, tuple) else output
        return hidden

    def _pool_and_classify(
        self, states: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        # Mean over real tokens only, as all-MiniLM-L6-v2 was pre-trained to pool.
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


class ProbabilityModel(nn.Module):
    """What is exported: the classifier followed by softmax."""

    def __init__(self, classifier: SentimentClassifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(input_ids, attention_mask), dim=-1)


def load_tokenizer(model_dir: Path, max_length: int) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # The shipped file pads every row to 128; we pad per batch instead.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def build_classifier(model_dir: Path, config: TrainConfig) -> SentimentClassifier:
    encoder = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False)
    return SentimentClassifier(encoder, dropout=config.dropout, frozen_layers=config.frozen_layers)


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    return [encoding.ids for encoding in tokenizer.encode_batch(list(texts))]


def pad(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def length_bucketed(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of indices: shuffled, sorted by length within pools of 50 batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _optimizer(
    model: SentimentClassifier, config: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    no_decay = ("bias", "LayerNorm.weight")
    groups: list[dict[str, object]] = []
    for part, lr in ((model.encoder, config.encoder_lr), (model.head, config.head_lr)):
        named = [(n, p) for n, p in part.named_parameters() if p.requires_grad]
        decay = [p for n, p in named if not any(key in n for key in no_decay)]
        plain = [p for n, p in named if any(key in n for key in no_decay)]
        groups.append({"params": decay, "lr": lr, "weight_decay": config.weight_decay})
        groups.append({"params": plain, "lr": lr, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups)
    warmup = max(1, int(total_steps * config.warmup_fraction))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def precompute_lower(
    model: SentimentClassifier, rows: Sequence[Sequence[int]], batch_size: int = 128
) -> list[torch.Tensor]:
    """Per row, the frozen layers' output for its real tokens (padding trimmed off)."""
    model.eval()
    states: list[torch.Tensor] = [torch.empty(0)] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        ids, mask = pad([rows[i] for i in chunk])
        hidden = model.lower(ids, mask)
        for j, i in enumerate(chunk):
            states[i] = hidden[j, : len(rows[i])].clone()
    return states


def pad_states(states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(state) for state in states)
    hidden = torch.zeros((len(states), width, states[0].shape[-1]), dtype=states[0].dtype)
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, state in enumerate(states):
        hidden[i, : len(state)] = state
        mask[i, : len(state)] = 1
    return hidden, mask


def train(
    model: SentimentClassifier,
    tokenizer: Tokenizer,
    examples: Sequence[Example],
    config: TrainConfig,
    seed: int,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Fine-tune the layers above the frozen ones in place; returns steps, times, last loss."""
    rng = random.Random(seed)
    started = time.monotonic()
    model.freeze_lower()
    rows = encode(tokenizer, [example.text for example in examples])
    lower = precompute_lower(model, rows)
    precomputed = time.monotonic() - started
    log(f"frozen layers computed for {len(rows)} rows in {precomputed:.0f}s")
    labels = torch.tensor([example.label for example in examples], dtype=torch.long)
    total_steps = int(math.ceil(len(rows) / config.batch_size) * config.epochs)
    optimizer, scheduler = _optimizer(model, config, total_steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    trainable = [p for p in model.parameters() if p.requires_grad]
    model.train()
    step, smoothed = 0, float("nan")
    while step < total_steps:
        for batch in length_bucketed([len(row) for row in rows], config.batch_size, rng):
            if step >= total_steps:
                break
            hidden, mask = pad_states([lower[i] for i in batch])
            loss = loss_fn(model.upper(hidden, mask), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            value = float(loss.item())
            smoothed = value if math.isnan(smoothed) else 0.98 * smoothed + 0.02 * value
            if step % 50 == 0 or step == total_steps:
                elapsed = time.monotonic() - started
                log(f"step {step}/{total_steps} loss {smoothed:.4f} {elapsed:.0f}s")
    model.eval()
    seconds = time.monotonic() - started
    return {
        "steps": step,
        "seconds": seconds,
        "precompute_seconds": precomputed,
        "final_loss": smoothed,
    }


@torch.inference_mode()
def predict_proba(
    model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int = 128
) -> np.ndarray:
    """Softmax probabilities of the torch model, in input order."""
    model.eval()
    rows = encode(tokenizer, texts)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = np.zeros((len(rows), 3), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        ids, mask = pad([rows[i] for i in chunk])
        out[chunk] = torch.softmax(model(ids, mask), dim=-1).numpy()
    return out
