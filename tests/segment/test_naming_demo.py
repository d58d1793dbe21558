"""Names and rules on the demo shop as production sees it: the generator's files go in
through the ingest API, the v1 features are computed in Postgres as of the generator's
``now``, and the training pipeline's modelling subset is segmented and explained."""

from __future__ import annotations

import csv
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import Engine, text

from segmenta.client import upload
from segmenta.demo.generate import DEFAULT_NOW, generate
from services.segment.features import MODEL_FEATURES, compute_features, load_matrix
from services.segment.modeling import Segmenter
from shared.auth import create_api_key
from shared.db import session_scope

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KINDS = ("customers", "products", "orders", "events", "reviews", "transcripts")
SEED = 7  # the pipeline's default seed


@dataclass(frozen=True)
class DemoShop:
    values: NDArray[np.float64]
    names: list[str]
    personas: NDArray[np.str_]


@pytest.fixture(scope="module")
def demo(api: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> DemoShop:
    tenant = f"demo-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        key = create_api_key(session, client="shop", scopes=["ingest:write"], tenant=tenant)
    data = tmp_path_factory.mktemp("demo")
    generate(1400, SEED, data)
    for kind in KINDS:
        upload(api, key.key, kind, data / f"{kind}.jsonl", quiet=True)
    with engine.connect() as conn:
        tenant_id = conn.execute(
            text("SELECT id FROM tenant WHERE name = :n"), {"n": tenant}
        ).scalar_one()
    with session_scope(engine) as session:
        compute_features(session, tenant_id=tenant_id, as_of=DEFAULT_NOW)
    with session_scope(engine) as session:
        matrix = load_matrix(session, tenant_id=tenant_id)
    with (data / "truth.csv").open(encoding="utf-8") as f:
        persona = {row["customer_id"]: row["persona"] for row in csv.DictReader(f)}
    with engine.connect() as conn:
        ids: dict[int, str] = dict(
            conn.execute(  # type: ignore[arg-type]
                text("SELECT id, customer_id FROM customer WHERE tenant_id = :t"), {"t": tenant_id}
            ).all()
        )
    personas = np.asarray([persona[ids[int(pk)]] for pk in matrix.customer_pks])
    return DemoShop(matrix.values, matrix.names, personas)


def fit(demo: DemoShop, k: int | str) -> tuple[Segmenter, dict[str, Any]]:
    segmenter = Segmenter(k=k, seed=SEED, features=MODEL_FEATURES["v1"])
    segmenter.fit(demo.values, feature_names=demo.names)
    return segmenter, segmenter.explain(demo.values)


# What each persona of the demo generator may be called (the segment named is the one
# where the persona is the majority). A split persona keeps its name with a qualifier.
ALLOWED = {
    "champion": {"Champions"},
    "loyal_regular": {"Loyal regulars", "High store visits in the last 90 days"},
    "bargain_hunter": {"Bargain hunters"},
    "new_customer": {"New customers"},
    "lapsing_high_spender": {"Lapsing high spenders"},
    "window_shopper": {"Window shoppers"},
    "unhappy_returner": {"Unhappy customers", "Unhappy returners"},
}


def base(name: str) -> str:
    return name.split(" (")[0]


def check_claims(name: str, means: dict[str, float], overall: dict[str, float]) -> None:
    """What a name says must hold for the segment's means."""
    if "Lapsing" in name:
        assert means["frequency"] >= 0.5, f"{name}: most never ordered, they cannot lapse"
        assert means["recency_days"] > overall["recency_days"], name
    if name.startswith("New customers"):
        assert means["tenure_days"] < overall["tenure_days"] / 4, name
    if name.startswith("Window shoppers"):
        assert means["frequency"] < 0.5, name
    if name.startswith("Champions"):
        assert means["frequency"] > overall["frequency"], name
        assert means["monetary"] > overall["monetary"], name


@pytest.mark.parametrize("k", ["auto", 12, 15])
def test_names_are_true_of_every_demo_persona_and_unique(demo: DemoShop, k: int | str) -> None:
    segmenter, report = fit(demo, k)

    names = [segment["name"] for segment in report["segments"]]
    assert len(set(names)) == len(names), names
    seen = set()
    for segment in report["segments"]:
        members = demo.personas[segmenter.labels_ == segment["label"]]
        persona = Counter(members.tolist()).most_common(1)[0][0]
        seen.add(persona)
        features = segment["profile"]["features"]
        means = {name: value["mean"] for name, value in features.items()}
        overall = {name: value["population_mean"] for name, value in features.items()}
        check_claims(segment["name"], means, overall)
        # A persona's own segment (most of its customers) carries the persona's name.
        if Counter(demo.personas.tolist())[persona] * 0.5 < len(members) and k == "auto":
            assert base(segment["name"]) in ALLOWED[persona], (persona, segment["name"])
    assert seen == set(ALLOWED)


@pytest.mark.parametrize("k", ["auto", 15])
def test_every_demo_segment_has_a_readable_measured_rule(demo: DemoShop, k: int | str) -> None:
    _, report = fit(demo, k)

    for segment in report["segments"]:
        rules = segment["rules"]
        assert rules["text"], f"{segment['name']}: no rule"
        assert 0 <= rules["coverage"] <= 1
        assert 0 <= rules["precision"] <= 1
        assert rules["low_coverage"] == (rules["coverage"] < 0.5)
        assert "_" not in rules["text"], rules["text"]  # labels, not column names
        # Bracketed wherever "and" meets "or": outside the brackets, only one of them.
        outside = re.sub(r"\([^()]*\)", "()", rules["text"])
        assert not (" or " in outside and " and " in outside), rules["text"]
    good = [s for s in report["segments"] if s["rules"]["coverage"] >= 0.8]
    assert len(good) >= len(report["segments"]) - 2
    # "has ordered" never stands in for a threshold on an amount near zero.
    assert not any("> 2.1" in s["rules"]["text"] for s in report["segments"])
