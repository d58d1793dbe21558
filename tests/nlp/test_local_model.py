"""The shipped sentiment model as the nlp service loads it (ONNX Runtime, no torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.nlp.local_model import DEFAULT_DIRECTORY, LocalSentimentModel

pytestmark = pytest.mark.unit

POSITIVE = [
    "I love this product, it works perfectly and arrived early.",
    "The support agent was friendly and solved my problem in minutes. Thank you!",
    "Absolutely fantastic quality, I would happily buy it again.",
]
NEGATIVE = [
    "This is the worst purchase I have ever made, it broke after one day.",
    "I waited two hours on hold and nobody helped me. Terrible service.",
    "Awful quality, a complete waste of money. I want a refund.",
]


@pytest.fixture(scope="module")
def model() -> LocalSentimentModel:
    return LocalSentimentModel.load(threads=1)


def test_version_and_labels_come_from_the_shipped_manifest(model: LocalSentimentModel) -> None:
    manifest = json.loads((DEFAULT_DIRECTORY / "model.json").read_text(encoding="utf-8"))
    assert model.version == manifest["version"]
    assert model.version.startswith("minilm-sentiment-")
    assert model.labels == ("negative", "neutral", "positive")


@pytest.mark.parametrize("text", POSITIVE)
def test_clearly_positive_sentences_are_positive(model: LocalSentimentModel, text: str) -> None:
    probabilities = model.predict_proba([text])[0]
    assert model.labels[int(probabilities.argmax())] == "positive"


@pytest.mark.parametrize("text", NEGATIVE)
def test_clearly_negative_sentences_are_negative(model: LocalSentimentModel, text: str) -> None:
    probabilities = model.predict_proba([text])[0]
    assert model.labels[int(probabilities.argmax())] == "negative"


def test_rows_are_probabilities_in_input_order(model: LocalSentimentModel) -> None:
    # Interleaved and of different lengths, so sorting by length inside the call shows.
    texts = [text for pair in zip(POSITIVE, NEGATIVE, strict=True) for text in pair]
    texts.append("ok")
    probabilities = model.predict_proba(texts, batch_size=2)

    assert probabilities.shape == (len(texts), 3)
    assert np.all(probabilities >= 0.0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([model.predict_proba([text]) for text in texts])
    # int8 activations are quantized per batch: batch-mates move scores a little, not labels.
    np.testing.assert_allclose(probabilities, one_by_one, atol=0.1)
    winners = [model.labels[i] for i in probabilities[:-1].argmax(axis=1)]
    assert winners == ["positive", "negative"] * len(POSITIVE)
    alone = [model.labels[i] for i in one_by_one[:-1].argmax(axis=1)]
    assert alone == winners


def test_no_texts_give_an_empty_result(model: LocalSentimentModel) -> None:
    assert model.predict_proba([]).shape == (0, 3)


def test_a_bare_string_is_refused(model: LocalSentimentModel) -> None:
    with pytest.raises(TypeError):
        model.predict_proba("not a list")
