"""The recommender's training: a long job of the personalize runs worker.

It learns from every purchase of the tenant, scores itself and the popularity baseline
on a time split (the last ``holdout_days`` held out), then precomputes each customer's
top items into Redis, where `GET /v1/recommendations/{customer_id}` reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import scipy.sparse as sp  # type: ignore[import-untyped]
from numpy.typing import NDArray
from pydantic import JsonValue
from redis import Redis
from sqlalchemy import Engine, text
from sqlmodel import Session

from services.personalize.cache import popular_key, recs_key, subject_hash
from services.personalize.recommend import runs
from services.personalize.recommend.evaluate import compare, time_split
from services.personalize.recommend.model import NO_SEGMENT, Pick, Reason, Recommender
from shared.db import session_scope
from shared.reliable import Subject
from shared.runs import ArtifactMetadata, DataWindow, RunCancelled, library_versions

log = logging.getLogger(__name__)
WRITE_CHUNK = 1_000
LIBRARIES = ("numpy", "scipy", "implicit", "threadpoolctl")

_PURCHASES = text(
    """
    SELECT l.customer_pk, l.product_id, o.placed_at
    FROM order_line l JOIN orders o ON o.id = l.order_pk
    WHERE l.tenant_id = :t AND o.placed_at <= :as_of
    """
)
_CUSTOMERS = text(
    """
    SELECT c.id, m.segment_key FROM customer c
    LEFT JOIN segment_membership m ON m.customer_pk = c.id
    WHERE c.tenant_id = :t ORDER BY c.id
    """
)
_PRODUCTS = text("SELECT product_id, name, category FROM product WHERE tenant_id = :t")
# FOR SHARE: an erasure deleting one of these customers waits for the keys written
# here, so its cache erasure (which runs after) always removes them.
_STILL_HERE = text(
    "SELECT id, customer_id FROM customer WHERE id = ANY(:pks) ORDER BY id FOR SHARE"
)


@dataclass(frozen=True)
class Catalogue:
    ids: list[str]
    names: list[str]
    repeatable: NDArray[np.bool_]

    def reason(self, pick: Pick) -> str:
        if pick.reason is Reason.BOUGHT_TOGETHER and pick.because is not None:
            return f"bought together with {self.names[pick.because]}"
        return {
            Reason.SEGMENT_POPULAR: "popular in your segment",
            Reason.POPULAR: "popular with all shoppers",
        }.get(pick.reason, "bought by customers with similar purchases")

    def items(self, picks: Sequence[Pick]) -> list[dict[str, object]]:
        return [
            {"product_id": self.ids[p.item], "score": round(p.score, 4), "reason": self.reason(p)}
            for p in picks
        ]


@dataclass(frozen=True)
class Purchases:
    customers: NDArray[np.int64]  # row → customer pk
    segments: NDArray[np.int64]
    segment_keys: list[str]
    users: NDArray[np.int64]  # per purchase line
    items: NDArray[np.int64]
    at: NDArray[np.float64]  # epoch seconds
    catalogue: Catalogue

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.customers), len(self.catalogue.ids)

    def matrix(self) -> sp.csr_matrix:
        ones = np.ones(len(self.users), dtype=np.float32)
        matrix = sp.csr_matrix((ones, (self.users, self.items)), shape=self.shape)
        matrix.sum_duplicates()
        return matrix


def load_purchases(
    session: Session, *, tenant_id: int, as_of: datetime, repeat_categories: Sequence[str]
) -> Purchases:
    customers = session.execute(_CUSTOMERS, {"t": tenant_id}).all()
    keys = sorted({segment for _, segment in customers if segment})
    segment_index = {key: i for i, key in enumerate(keys)}
    row_of = {int(pk): row for row, (pk, _) in enumerate(customers)}
    products = {
        pid: (name, category)
        for pid, name, category in session.execute(_PRODUCTS, {"t": tenant_id})
    }
    lines = session.execute(_PURCHASES, {"t": tenant_id, "as_of": as_of}).all()
    ids = sorted(set(products) | {pid for _, pid, _ in lines})
    item_of = {pid: i for i, pid in enumerate(ids)}
    repeat = set(repeat_categories)
    kept = [(row_of[pk], item_of[pid], at.timestamp()) for pk, pid, at in lines if pk in row_of]
    users, items, at = (np.array(v) for v in zip(*kept, strict=True)) if kept else ([], [], [])
    return Purchases(
        customers=np.array([pk for pk, _ in customers], dtype=np.int64),
        segments=np.array(
            [segment_index[s] if s else NO_SEGMENT for _, s in customers], dtype=np.int64
        ),
        segment_keys=keys,
        users=np.asarray(users, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        at=np.asarray(at, dtype=np.float64),
        catalogue=Catalogue(
            ids=ids,
            names=[products.get(pid, (pid, ""))[0] for pid in ids],
            repeatable=np.array(
                [products.get(pid, ("", ""))[1] in repeat for pid in ids], dtype=bool
            ),
        ),
    )


def evaluate(
    data: Purchases, params: runs.RecommenderParams, as_of: datetime
) -> tuple[dict[str, JsonValue], dict[str, dict[str, JsonValue]]]:
    """The run's metrics and the popularity baseline's, on the last ``holdout_days``."""
    cut = (as_of - timedelta(days=params.holdout_days)).timestamp()
    after = data.at >= cut
    if not after.any() or after.all():
        return {"skipped": "no purchases on both sides of the holdout cut"}, {}
    repeatable = _repeatable(data, params)
    split = time_split(data.users, data.items, after, data.shape, repeatable=repeatable)
    if not len(split.test_users):
        return {"skipped": "no customer bought anything new after the cut"}, {}
    result = compare(
        split,
        Recommender(**params.model_params()),
        segments=data.segments,
        n_segments=len(data.segment_keys),
        repeatable=repeatable,
    )
    metrics = result.as_metrics()
    own: dict[str, JsonValue] = {
        k: v for k, v in metrics.items() if not k.startswith("popularity_")
    }
    baseline: dict[str, JsonValue] = {
        k.removeprefix("popularity_"): v for k, v in metrics.items() if k.startswith("popularity_")
    }
    return own, {"popularity": baseline}


def _repeatable(data: Purchases, params: runs.RecommenderParams) -> NDArray[np.bool_]:
    if not params.exclude_bought:
        return np.ones(len(data.catalogue.ids), dtype=bool)
    return data.catalogue.repeatable


def train(engine: Engine, redis: Redis, secret: str, subject: Subject) -> None:
    """The long job ``personalize.train_recommender`` (see `shared.reliable.long_job`)."""
    with session_scope(engine) as session:
        request = runs.load_request(session, subject.subject_id)
        if request is None:
            return
    with runs.RECOMMENDER.single_runner(engine, request.tenant_id):
        try:
            _train(engine, redis, secret, request)
        except RunCancelled:
            with session_scope(engine) as session:
                runs.mark_cancelled(session, request.id)
            log.info("recommender run %d cancelled", request.id)


def _train(engine: Engine, redis: Redis, secret: str, request: runs.RecommenderRequest) -> None:
    """Each stage boundary checks the run (`shared.runs.RunCancelled` once it is asked to
    stop). Publishing is the last stage: a run stopped there has served the customers
    written so far its lists, until the next run replaces them."""
    params, as_of = request.params, datetime.now(UTC)
    with session_scope(engine) as session:
        runs.mark_running(session, request.id)
    with session_scope(engine) as session:
        runs.stage_done(session, request.id, 0.05, "started")
    with session_scope(engine) as session:
        data = load_purchases(
            session,
            tenant_id=request.tenant_id,
            as_of=as_of,
            repeat_categories=params.repeat_categories,
        )
    metrics, baselines = evaluate(data, params, as_of)
    with session_scope(engine) as session:
        runs.stage_done(session, request.id, 0.4, "evaluated")
    model = Recommender(**params.model_params()).fit(
        data.matrix(), data.segments, len(data.segment_keys)
    )
    picks = model.recommend(
        np.arange(len(data.customers), dtype=np.int64),
        params.top_n,
        repeatable=_repeatable(data, params),
    )
    with session_scope(engine) as session:
        runs.stage_done(session, request.id, 0.7, "fitted")
    _publish_popular(redis, request, data, model)
    written = _publish_customers(engine, redis, secret, request, data, picks)
    metadata = ArtifactMetadata(
        kind="recommender",
        data_window=DataWindow(
            as_of=as_of,
            rows=len(data.users),
            customers=len(data.customers),
            products=len(data.catalogue.ids),
            cached_customers=written,
        ),
        feature_set="purchases",
        parameters=params.model_dump(mode="json"),
        metrics=metrics,
        baselines=baselines,
        library_versions=library_versions(LIBRARIES),
        seed=params.seed,
    )
    with session_scope(engine) as session:
        runs.save_result(session, request.id, metadata)
    log.info("recommender run %d: %d customers cached", request.id, written)


def _publish_popular(
    redis: Redis, request: runs.RecommenderRequest, data: Purchases, model: Recommender
) -> None:
    pipe = redis.pipeline(transaction=False)
    for index, key in [(NO_SEGMENT, None), *enumerate(data.segment_keys)]:
        body = {
            "v": request.id,
            "items": data.catalogue.items(model.popular(index, request.params.top_n)),
        }
        pipe.set(popular_key(request.tenant_id, key), orjson.dumps(body))
    pipe.execute()


def _publish_customers(
    engine: Engine,
    redis: Redis,
    secret: str,
    request: runs.RecommenderRequest,
    data: Purchases,
    picks: list[list[Pick]],
) -> int:
    row_of = {int(pk): row for row, pk in enumerate(data.customers.tolist())}
    written = 0
    for start in range(0, len(data.customers), WRITE_CHUNK):
        pks = data.customers[start : start + WRITE_CHUNK].tolist()
        with session_scope(engine) as session:
            here = session.execute(_STILL_HERE, {"pks": pks}).all()
            pipe = redis.pipeline(transaction=False)
            for pk, customer_id in here:
                items = data.catalogue.items(picks[row_of[int(pk)]])
                key = recs_key(request.tenant_id, subject_hash(secret, customer_id))
                pipe.set(key, orjson.dumps({"v": request.id, "items": items}))
            pipe.execute()
            written += len(here)
            runs.stage_done(
                session, request.id, 0.7 + 0.25 * (start + len(pks)) / len(data.customers)
            )
    return written
