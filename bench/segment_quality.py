"""Segment quality on the demo shop: every algorithm against the personas it was made from.

The shop goes in through the real ingest path (the ingest API started as the tests start
it, files streamed by `segmenta.client.upload`); with an nlp backend, the nlp worker and
the outbox relay analyse its reviews and transcripts first, so the sentiment features
are filled as in production. Then the v1 features are computed once, as of the
generator's ``now``, and each algorithm is fitted on `load_matrix`'s rows with the
training pipeline's modeling subset (`features.MODEL_FEATURES`), seed and defaults.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score  # type: ignore[import-untyped]
from sqlalchemy import Engine, text

from segmenta.client import upload
from segmenta.demo.generate import DEFAULT_NOW, generate
from services.segment.features import MODEL_FEATURES, compute_features, load_matrix
from services.segment.modeling.segmenter import Segmenter
from shared.db import session_scope

KINDS = ("customers", "products", "orders", "events", "reviews", "transcripts")
ALGORITHMS = ("kmeans", "minibatch_kmeans", "gmm", "agglomerative", "hdbscan", "dbscan")
SEED = 7  # the pipeline's default seed (SEGMENTA_SEGMENT_SEED)


@dataclass(frozen=True)
class Fit:
    algorithm: str
    k: str  # "auto" or the number asked for
    ari: float
    segments: int
    noise_share: float
    silhouette: float | None
    fidelity: float
    fit_s: float


@dataclass(frozen=True)
class Shop:
    tenant_id: int
    customers: int
    counts: dict[str, int]
    load_s: float
    analysed: int


def load_shop(
    api: str, key: str, engine: Engine, customers: int, data: Path, log: Callable[[str], None]
) -> tuple[dict[str, int], float]:
    """Generate the demo shop into ``data`` and stream every file to the ingest API."""
    counts = generate(customers, SEED, data)
    started = time.perf_counter()
    for kind in KINDS:
        answer = upload(api, key, kind, data / f"{kind}.jsonl", quiet=True)
        log(f"  {kind}: {answer}")
    return counts, time.perf_counter() - started


def wait_for_nlp(engine: Engine, tenant_id: int, limit_s: float) -> int:
    """Until the tenant has no nlp work left in the outbox; the analyses stored."""
    deadline = time.monotonic() + limit_s
    pending = -1
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            pending = conn.execute(
                text("SELECT count(*) FROM outbox WHERE tenant_id = :t AND task_name LIKE 'nlp.%'"),
                {"t": tenant_id},
            ).scalar_one()
        if pending == 0:
            break
        time.sleep(1.0)
    with engine.connect() as conn:
        analysed = conn.execute(
            text("SELECT count(*) FROM text_analysis WHERE tenant_id = :t AND status = 'ok'"),
            {"t": tenant_id},
        ).scalar_one()
    if pending:
        raise TimeoutError(f"{pending} nlp outbox rows left after {limit_s:.0f} s")
    return int(analysed)


def truth_labels(data: Path, engine: Engine, tenant_id: int, pks: Any) -> list[str]:
    """Each matrix row's persona, by customer pk."""
    with (data / "truth.csv").open(encoding="utf-8") as f:
        persona = {row["customer_id"]: row["persona"] for row in csv.DictReader(f)}
    with engine.connect() as conn:
        ids = {
            int(pk): str(cid)
            for pk, cid in conn.execute(
                text("SELECT id, customer_id FROM customer WHERE tenant_id = :t"), {"t": tenant_id}
            )
        }
    return [persona[ids[int(pk)]] for pk in pks]


def fit_all(
    engine: Engine,
    tenant_id: int,
    truth: list[str],
    log: Callable[[str], None],
    algorithms: tuple[str, ...] = ALGORITHMS,
) -> list[Fit]:
    with session_scope(engine) as session:
        matrix = load_matrix(session, tenant_id=tenant_id)
    personas = len(set(truth))
    fits = []
    for algorithm in algorithms:
        for k in ("auto", personas):
            if algorithm in ("dbscan", "hdbscan") and k != "auto":
                continue  # density methods choose their own number of segments
            fit = fit_one(matrix.values, matrix.names, truth, algorithm, k)
            log(
                f"  {algorithm:<17} k={k!s:<4} ARI {fit.ari:.3f}, {fit.segments} segments, "
                f"fidelity {fit.fidelity:.2f}, {fit.fit_s:.1f} s"
            )
            fits.append(fit)
    return fits


def fit_one(values: Any, names: list[str], truth: list[str], algorithm: str, k: int | str) -> Fit:
    segmenter = Segmenter(algorithm=algorithm, k=k, seed=SEED, features=MODEL_FEATURES["v1"])
    started = time.perf_counter()
    segmenter.fit(values, feature_names=names)
    fit_s = time.perf_counter() - started
    labels = segmenter.labels_
    explanation = segmenter.explain(values)
    metrics = segmenter.metrics_
    return Fit(
        algorithm=algorithm,
        k=str(k),
        ari=float(adjusted_rand_score(truth, labels)),
        segments=int(segmenter.n_segments_),
        noise_share=float(np.mean(labels < 0)),
        silhouette=metrics.get("silhouette"),
        fidelity=float(explanation["surrogate"]["fidelity"]),
        fit_s=fit_s,
    )


def compute(engine: Engine, tenant_id: int, as_of: datetime = DEFAULT_NOW) -> tuple[int, float]:
    """v1 features of every customer as of ``as_of`` (by default the generator's ``now``);
    rows and seconds."""
    started = time.perf_counter()
    with session_scope(engine) as session:
        rows = compute_features(session, tenant_id=tenant_id, as_of=as_of)
    return rows, time.perf_counter() - started


def fit_as_of_now(
    engine: Engine, tenant_id: int, truth: list[str], algorithm: str
) -> tuple[Fit, datetime]:
    """The default fit on features computed as a training run computes them: as of the
    wall clock, however long after the generator's ``now`` that is."""
    now = datetime.now(UTC)
    compute(engine, tenant_id, as_of=now)
    with session_scope(engine) as session:
        matrix = load_matrix(session, tenant_id=tenant_id)
    return fit_one(matrix.values, matrix.names, truth, algorithm, "auto"), now
