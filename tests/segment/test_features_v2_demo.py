"""The demo shop segmented on v2: offer reactions join the features and the personas are
still recovered.

The shop goes in through the ingest API as in production; then a storefront shows offers
to most customers and each persona reacts with its own taste (bargain hunters convert on
discounts, champions on content, the rest rarely), logged as personalize logs them.
"""

from __future__ import annotations

import csv
import random
import uuid
from pathlib import Path

import numpy as np
import pytest
from psycopg.types.json import Jsonb
from sklearn.metrics import adjusted_rand_score  # type: ignore[import-untyped]
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
OFFERS = {"ten-off": "discount", "free-ship": "free_shipping", "lookbook": "content"}
# P(conversion | shown) per persona and offer; unnamed pairs convert at 2%.
TASTE = {
    ("bargain_hunter", "ten-off"): 0.4,
    ("bargain_hunter", "free-ship"): 0.15,
    ("champion", "lookbook"): 0.2,
    ("loyal_regular", "free-ship"): 0.1,
}


def load_demo(api: str, engine: Engine, data: Path) -> int:
    tenant = f"demo-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        key = create_api_key(session, client="shop", scopes=["ingest:write"], tenant=tenant)
    generate(1400, SEED, data, anomalies=False)  # every customer behaves as its persona
    for kind in KINDS:
        upload(api, key.key, kind, data / f"{kind}.jsonl", quiet=True)
    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT id FROM tenant WHERE name = :n"), {"n": tenant}).scalar_one()
        )


def serve_offers(engine: Engine, tenant_id: int, persona: dict[str, str]) -> None:
    """Six decisions for three customers in four, with feedback drawn from ``TASTE``."""
    rng = random.Random(SEED)
    decisions, feedback = [], []
    with engine.connect() as conn:
        customers = conn.execute(
            text("SELECT id, customer_id FROM customer WHERE tenant_id = :t ORDER BY id"),
            {"t": tenant_id},
        ).all()
    for pk, customer_id in customers:
        if rng.random() >= 0.75:
            continue
        for _ in range(6):
            offer = rng.choice(sorted(OFFERS))
            decision = uuid.uuid4().hex
            decisions.append({"d": decision, "c": pk, "o": Jsonb([{"offer_id": offer}])})
            if rng.random() < TASTE.get((persona[customer_id], offer), 0.02):
                feedback.append({"e": uuid.uuid4().hex, "d": decision, "c": pk, "o": offer})
    created = DEFAULT_NOW
    with session_scope(engine) as session:
        for offer_id, kind in OFFERS.items():
            session.execute(
                text(
                    "INSERT INTO offer (tenant_id, offer_id, name, kind, placements)"
                    " VALUES (:t, :o, :o, :k, ARRAY['home'])"
                ),
                {"t": tenant_id, "o": offer_id, "k": kind},
            )
        session.execute(
            text(
                "INSERT INTO decision (decision_id, tenant_id, customer_pk, subject_hash,"
                " placement, strategy, offers, eligible, personalised, created_at)"
                " VALUES (:d, :t, :c, 'h', 'home', 'bandit', :o, ARRAY[]::text[], true,"
                " CAST(:at AS timestamptz) - interval '3 days')"
            ),
            [{**d, "t": tenant_id, "at": created} for d in decisions],
        )
        session.execute(
            text(
                "INSERT INTO feedback (tenant_id, event_id, decision_id, subject_hash,"
                " customer_pk, offer_id, kind, occurred_at)"
                " VALUES (:t, :e, :d, 'h', :c, :o, 'conversion',"
                " CAST(:at AS timestamptz) - interval '2 days')"
            ),
            [{**f, "t": tenant_id, "at": created} for f in feedback],
        )


def ari(engine: Engine, tenant_id: int, feature_set: str, persona: dict[str, str]) -> float:
    with session_scope(engine) as session:
        compute_features(session, tenant_id=tenant_id, feature_set=feature_set, as_of=DEFAULT_NOW)
    with session_scope(engine) as session:
        matrix = load_matrix(session, tenant_id=tenant_id, feature_set=feature_set)
    with engine.connect() as conn:
        ids: dict[int, str] = {
            int(pk): str(cid)
            for pk, cid in conn.execute(
                text("SELECT id, customer_id FROM customer WHERE tenant_id = :t"),
                {"t": tenant_id},
            )
        }
    truth = [persona[ids[int(pk)]] for pk in matrix.customer_pks]
    segmenter = Segmenter(k="auto", seed=SEED, features=MODEL_FEATURES[feature_set])
    segmenter.fit(matrix.values, feature_names=matrix.names)
    if feature_set == "v2":  # the reactions really are in the matrix
        hunters = np.asarray(truth) == "bargain_hunter"
        for name in ("offer_conversion_rate", "discount_conversion_share"):
            values = matrix.values[:, matrix.names.index(name)]
            assert values[hunters].mean() > 3 * values[~hunters].mean(), name
    return float(adjusted_rand_score(truth, segmenter.labels_))


def test_segments_on_v2_still_recover_the_demo_personas(
    api: str, engine: Engine, tmp_path: Path
) -> None:
    tenant_id = load_demo(api, engine, tmp_path)
    with (tmp_path / "truth.csv").open(encoding="utf-8") as f:
        persona = {row["customer_id"]: row["persona"] for row in csv.DictReader(f)}
    serve_offers(engine, tenant_id, persona)

    on_v1 = ari(engine, tenant_id, "v1", persona)
    on_v2 = ari(engine, tenant_id, "v2", persona)

    print(f"ARI vs personas: v1 {on_v1:.3f}, v2 {on_v2:.3f}")
    assert on_v2 >= 0.95
    assert on_v2 >= on_v1 - 0.01  # the reactions are signal, not noise that splits personas
