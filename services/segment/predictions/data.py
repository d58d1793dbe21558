"""What a prediction run learns from: the customers' features and BG/NBD figures as of a
cut-off, and what they bought in the horizon after it. Nothing after the cut-off is read
for features; only the labels look past it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlmodel import Session

from services.segment.clv import BGNBD
from services.segment.features import FeatureMatrix
from services.segment.features.registry import get_feature_set
from services.segment.features.repository import features_as_of
from services.segment.scoring.clv_scores import (
    FIT_SAMPLE,
    MIN_REPEAT_CUSTOMERS,
    PENALIZER,
    purchase_history,
)

Model = Literal["churn", "purchase_propensity"]
MODELS: tuple[Model, ...] = ("churn", "purchase_propensity")
# Appended to the feature set's stored features, computed at the same cut-off.
BGNBD_FEATURES = ("bgnbd_expected_purchases", "bgnbd_p_alive")

_LABELS = text(
    """
    SELECT customer_pk, count(*) AS orders, coalesce(sum(total), 0)::float8 AS spend
    FROM orders
    WHERE tenant_id = :tenant AND placed_at > :start AND placed_at <= :end
    GROUP BY customer_pk
    """
)


@dataclass(frozen=True)
class CutOff:
    """The customers a model sees at one cut-off, their vectors and BG/NBD figures."""

    as_of: datetime
    names: list[str]
    customer_pks: NDArray[np.int64]
    values: NDArray[np.float64]
    bgnbd: dict[str, float] | None  # the fitted parameters, None when it could not fit

    def __len__(self) -> int:
        return len(self.customer_pks)

    def column(self, name: str) -> NDArray[np.float64]:
        return self.values[:, self.names.index(name)]


@dataclass(frozen=True)
class Outcome:
    """What each customer of a cut-off did in the horizon after it."""

    orders: NDArray[np.float64]
    spend: NDArray[np.float64]

    def label(self, model: Model) -> NDArray[np.int64]:
        """1 for the event the model predicts: no order (churn), an order (propensity)."""
        bought = self.orders > 0
        return (~bought if model == "churn" else bought).astype(np.int64)


def load_cut_off(
    session: Session,
    *,
    tenant_id: int,
    as_of: datetime,
    feature_set: str,
    model: Model,
    horizon_days: int,
    seed: int,
) -> CutOff:
    """The model's population as of ``as_of``: the customers who had bought by then
    (churn) or who existed by then (propensity), with their features and BG/NBD figures.
    A customer first seen after ``as_of`` is not in it."""
    pks, rows = features_as_of(session, tenant_id=tenant_id, as_of=as_of, feature_set=feature_set)
    definition = get_feature_set(feature_set)
    names = [feature.name for feature in definition.features]
    values = np.asarray(rows, dtype=np.float64).reshape(len(pks), len(names))
    keys = np.asarray(pks, dtype=np.int64)
    has_orders = values[:, names.index("has_orders")] > 0
    existed = has_orders | (values[:, names.index("tenure_days")] > 0)
    keep = has_orders if model == "churn" else existed
    keys, values = keys[keep], values[keep]
    extra, params = _bgnbd_features(keys, values, names, as_of, horizon_days, seed)
    return CutOff(
        as_of=as_of,
        names=[*names, *BGNBD_FEATURES],
        customer_pks=keys,
        values=np.column_stack([values, extra]),
        bgnbd=params,
    )


def load_outcome(
    session: Session, *, tenant_id: int, cut_off: CutOff, horizon_days: int
) -> Outcome:
    """Orders and spend of each customer of ``cut_off`` in the horizon after it."""
    end = cut_off.as_of + timedelta(days=horizon_days)
    found = session.execute(_LABELS, {"tenant": tenant_id, "start": cut_off.as_of, "end": end})
    orders = np.zeros(len(cut_off))
    spend = np.zeros(len(cut_off))
    index = {int(pk): i for i, pk in enumerate(cut_off.customer_pks)}
    for pk, count, total in found:
        row = index.get(int(pk))
        if row is not None:
            orders[row], spend[row] = float(count), float(total)
    return Outcome(orders=orders, spend=spend)


def _bgnbd_features(
    pks: NDArray[np.int64],
    values: NDArray[np.float64],
    names: list[str],
    as_of: datetime,
    horizon_days: int,
    seed: int,
) -> tuple[NDArray[np.float64], dict[str, float] | None]:
    """Expected purchases in the horizon and P(alive) by a BG/NBD fitted on this cut-off's
    history alone (0 and 0 for customers without orders, or without a fit)."""
    extra = np.zeros((len(pks), len(BGNBD_FEATURES)))
    matrix = FeatureMatrix("cut-off", names, pks, values, as_of, as_of)
    summary = purchase_history(matrix, as_of)
    if summary is None or int((summary.frequency > 0).sum()) < MIN_REPEAT_CUSTOMERS:
        return extra, None
    rng = np.random.default_rng(seed)
    n = len(summary)
    rows = np.arange(n) if n <= FIT_SAMPLE else rng.choice(n, FIT_SAMPLE, replace=False)
    fitted = BGNBD(penalizer=PENALIZER).fit(
        summary.frequency[rows], summary.recency[rows], summary.T[rows]
    )
    history = (summary.frequency, summary.recency, summary.T)
    at = np.searchsorted(pks, summary.customer_ids)
    expected = fitted.expected_purchases(float(horizon_days), *history)
    extra[at, 0] = np.nan_to_num(expected, nan=0.0, posinf=0.0)
    extra[at, 1] = np.nan_to_num(fitted.probability_alive(*history), nan=0.0)
    p = fitted.params_
    return extra, {"r": p.r, "alpha": p.alpha, "a": p.a, "b": p.b}


MAX_CUT_OFFS = 4  # stacked training cut-offs at most (the latest one included)
MIN_STEP_DAYS = 14

_FIRST_ORDER = text("SELECT min(placed_at) FROM orders WHERE tenant_id = :tenant")


@dataclass(frozen=True)
class Training:
    """Stacked training rows: one block per cut-off, each with features as of its cut-off
    and labels observed in the horizon after it (never past the run's ``as_of``).
    ``groups`` numbers the block of each row, 0 for the latest cut-off."""

    cut_offs: list[CutOff]
    values: NDArray[np.float64]
    labels: NDArray[np.int64]
    groups: NDArray[np.int64]

    @property
    def customer_pks(self) -> NDArray[np.int64]:
        """Whose each row is (a customer has a row at every cut-off they are in)."""
        return np.concatenate([cut.customer_pks for cut in self.cut_offs])

    @property
    def latest(self) -> CutOff:
        return self.cut_offs[0]

    @property
    def base_rates(self) -> list[float]:
        return [round(float(self.labels[self.groups == k].mean()), 4) for k in self.groups_seen]

    @property
    def groups_seen(self) -> list[int]:
        return sorted({int(k) for k in self.groups})

    def __len__(self) -> int:
        return len(self.labels)


def training_cut_offs(
    as_of: datetime, horizon_days: int, first_order: datetime | None
) -> list[datetime]:
    """``as_of - horizon - k * step`` for k = 0.. while the cut-off has at least one step of
    history before it (``MAX_CUT_OFFS`` at most, the latest first), where the step is a
    third of the horizon and at least ``MIN_STEP_DAYS``. The latest is always there."""
    step = timedelta(days=max(horizon_days / 3, MIN_STEP_DAYS))
    latest = as_of - timedelta(days=horizon_days)
    found = [latest]
    while len(found) < MAX_CUT_OFFS and first_order is not None:
        at = latest - len(found) * step
        if at - step < first_order:
            break
        found.append(at)
    return found


def load_training(
    session: Session,
    *,
    tenant_id: int,
    as_of: datetime,
    feature_set: str,
    model: Model,
    horizon_days: int,
    seed: int,
) -> Training:
    """The stacked training rows of a run scoring at ``as_of`` (see `training_cut_offs`)."""
    first = session.execute(_FIRST_ORDER, {"tenant": tenant_id}).scalar_one_or_none()
    blocks: list[tuple[CutOff, NDArray[np.int64]]] = []
    for at in training_cut_offs(as_of, horizon_days, first):
        cut = load_cut_off(
            session,
            tenant_id=tenant_id,
            as_of=at,
            feature_set=feature_set,
            model=model,
            horizon_days=horizon_days,
            seed=seed,
        )
        if blocks and not len(cut):
            break
        outcome = load_outcome(session, tenant_id=tenant_id, cut_off=cut, horizon_days=horizon_days)
        blocks.append((cut, outcome.label(model)))
    return Training(
        cut_offs=[cut for cut, _ in blocks],
        values=np.vstack([cut.values for cut, _ in blocks]),
        labels=np.concatenate([y for _, y in blocks]).astype(np.int64),
        groups=np.concatenate(
            [np.full(len(y), k, dtype=np.int64) for k, (_, y) in enumerate(blocks)]
        ),
    )
