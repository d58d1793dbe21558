"""What a prediction run reads at a cut-off: nothing after it, against the real database.

Rows placed after the cut-off (orders with lines, events, transcripts, a customer who
signs up later) would change the features if they were read: the same features computed
at a later cut-off differ, so the test can fail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, text

from services.segment.predictions.data import (
    BGNBD_FEATURES,
    MAX_CUT_OFFS,
    CutOff,
    Model,
    Training,
    load_cut_off,
    load_outcome,
    load_training,
    training_cut_offs,
)
from shared.db import session_scope
from tests.segment.prediction_shop import build_history_shop

pytestmark = [pytest.mark.integration]
CUT = datetime(2026, 6, 1, tzinfo=UTC)
HORIZON = 60


def cut_off(engine: Engine, tenant_id: int, at: datetime, model: Model = "churn") -> CutOff:
    with session_scope(engine) as session:
        return load_cut_off(
            session,
            tenant_id=tenant_id,
            as_of=at,
            feature_set="v1",
            model=model,
            horizon_days=HORIZON,
            seed=7,
        )


def add_after(engine: Engine, tenant_id: int, pk: int, at: datetime) -> None:
    """An order with a line, events, a transcript and a new customer, all at ``at``."""
    with session_scope(engine) as session:
        params = {"t": tenant_id, "pk": pk, "at": at, "tag": at.isoformat()}
        order = session.execute(
            text(
                "INSERT INTO orders (tenant_id, order_id, customer_pk, placed_at, currency,"
                " total, channel, discount_code) VALUES (:t, 'late-' || :tag, :pk, :at, 'EUR',"
                " 999, 'store', 'LATE') RETURNING id"
            ),
            params,
        ).scalar_one()
        session.execute(
            text(
                "INSERT INTO order_line (order_pk, line_no, tenant_id, customer_pk, product_id,"
                " quantity, unit_price) VALUES (:o, 1, :t, :pk, 'p-late', 5, 199)"
            ),
            {**params, "o": order},
        )
        for kind in ("page_view", "email_open", "support_contact", "add_to_cart", "refund"):
            session.execute(
                text(
                    "INSERT INTO event (tenant_id, event_id, customer_pk, type, occurred_at)"
                    " VALUES (:t, :kind || :tag, :pk, :kind, :at)"
                ),
                {**params, "kind": kind},
            )
        session.execute(
            text(
                "INSERT INTO transcript (tenant_id, transcript_id, customer_pk, channel,"
                " started_at) VALUES (:t, 'tr-' || :tag, :pk, 'phone', :at)"
            ),
            params,
        )
        session.execute(
            text(
                "INSERT INTO customer (tenant_id, customer_id, signup_at)"
                " VALUES (:t, 'late-' || :tag, :at)"
            ),
            params,
        )


def test_rows_after_the_cut_off_change_nothing(engine: Engine) -> None:
    shop = build_history_shop(engine, customers=300, now=CUT + timedelta(days=HORIZON))
    before = cut_off(engine, shop.tenant_id, CUT)
    pk = int(before.customer_pks[0])
    add_after(engine, shop.tenant_id, pk, CUT + timedelta(seconds=1))
    add_after(engine, shop.tenant_id, pk, CUT + timedelta(days=20))
    after = cut_off(engine, shop.tenant_id, CUT)
    assert after.names == before.names
    assert BGNBD_FEATURES[0] in after.names
    np.testing.assert_array_equal(after.customer_pks, before.customer_pks)
    np.testing.assert_allclose(after.values, before.values)
    # The control: read a day later, the same rows change the customer's vector and the
    # population of a propensity model (the new customer exists by then).
    later = cut_off(engine, shop.tenant_id, CUT + timedelta(days=21))
    row = list(later.customer_pks).index(pk)
    frequency = later.names.index("frequency")
    first = list(before.customer_pks).index(pk)
    assert later.values[row, frequency] > before.values[first, frequency]
    everyone_then = cut_off(engine, shop.tenant_id, CUT, "purchase_propensity")
    everyone_later = cut_off(
        engine, shop.tenant_id, CUT + timedelta(days=21), "purchase_propensity"
    )
    assert len(everyone_later) == len(everyone_then) + 2


def test_only_buyers_are_in_the_churn_population(engine: Engine) -> None:
    shop = build_history_shop(engine, customers=200, now=CUT)
    churn = cut_off(engine, shop.tenant_id, CUT)
    everyone = cut_off(engine, shop.tenant_id, CUT, "purchase_propensity")
    has_orders = churn.names.index("has_orders")
    assert np.all(churn.values[:, has_orders] == 1)
    assert len(everyone) == 200
    assert len(churn) < len(everyone)
    assert churn.bgnbd is not None
    p_alive = churn.column("bgnbd_p_alive")
    assert np.all((p_alive > 0) & (p_alive <= 1))


def test_labels_count_only_the_horizon_after_the_cut_off(engine: Engine) -> None:
    shop = build_history_shop(engine, customers=150, now=CUT - timedelta(days=1))
    base = cut_off(engine, shop.tenant_id, CUT)
    pks = list(base.customer_pks)
    # Nobody bought after the shop's history ended: everyone churned.
    with session_scope(engine) as session:
        outcome = load_outcome(
            session, tenant_id=shop.tenant_id, cut_off=base, horizon_days=HORIZON
        )
    assert outcome.label("churn").sum() == len(pks)
    inside, outside = pks[0], pks[1]
    add_after(engine, shop.tenant_id, inside, CUT + timedelta(days=HORIZON))  # last instant in
    add_after(engine, shop.tenant_id, outside, CUT + timedelta(days=HORIZON, seconds=1))
    with session_scope(engine) as session:
        outcome = load_outcome(
            session, tenant_id=shop.tenant_id, cut_off=base, horizon_days=HORIZON
        )
    churned = outcome.label("churn")
    assert churned[0] == 0
    assert churned[1] == 1
    assert outcome.label("purchase_propensity")[0] == 1
    assert outcome.spend[0] == 999


def training(engine: Engine, tenant_id: int, as_of: datetime) -> Training:
    with session_scope(engine) as session:
        return load_training(
            session,
            tenant_id=tenant_id,
            as_of=as_of,
            feature_set="v1",
            model="churn",
            horizon_days=HORIZON,
            seed=7,
        )


def test_stacked_cut_offs_step_back_while_there_is_history() -> None:
    first = CUT - timedelta(days=365)
    found = training_cut_offs(CUT, HORIZON, first)
    step = timedelta(days=20)  # a third of the horizon
    assert found == [CUT - timedelta(days=HORIZON) - k * step for k in range(MAX_CUT_OFFS)]
    # Barely a step of history before the latest cut-off: one more, then no more.
    short = training_cut_offs(CUT, HORIZON, CUT - timedelta(days=HORIZON + 45))
    assert short == found[:2]
    assert training_cut_offs(CUT, HORIZON, None) == found[:1]
    assert training_cut_offs(CUT, 14, first)[1] == CUT - timedelta(days=28)  # 14-day floor


def test_stacked_training_reads_each_cut_off_as_of_itself_and_nothing_after_as_of(
    engine: Engine,
) -> None:
    shop = build_history_shop(engine, customers=300, now=CUT + timedelta(days=HORIZON))
    before = training(engine, shop.tenant_id, CUT)
    assert len(before.cut_offs) == MAX_CUT_OFFS
    assert [cut.as_of for cut in before.cut_offs] == training_cut_offs(
        CUT, HORIZON, CUT - timedelta(days=365)
    )
    # Each block is exactly what the cut-off alone reads: features relative to it.
    for k, cut in enumerate(before.cut_offs):
        alone = cut_off(engine, shop.tenant_id, cut.as_of)
        np.testing.assert_allclose(before.values[before.groups == k], alone.values)
    assert len(set(before.base_rates)) > 1  # several windows, several churn rates
    # Rows after the run's as_of change neither the features nor the labels.
    pk = int(before.latest.customer_pks[0])
    add_after(engine, shop.tenant_id, pk, CUT + timedelta(seconds=1))
    after = training(engine, shop.tenant_id, CUT)
    np.testing.assert_allclose(after.values, before.values)
    np.testing.assert_array_equal(after.labels, before.labels)
    np.testing.assert_array_equal(after.groups, before.groups)
    # The control: an order just before as_of is inside the latest cut-off's horizon, so
    # it flips that churned customer's label, and still not their features.
    latest = before.labels[before.groups == 0]
    churned = int(before.latest.customer_pks[int(np.argmax(latest == 1))])
    add_after(engine, shop.tenant_id, churned, CUT - timedelta(days=1))
    control = training(engine, shop.tenant_id, CUT)
    row = list(control.latest.customer_pks).index(churned)
    assert control.labels[control.groups == 0][row] == 0
    np.testing.assert_allclose(
        control.values[control.groups == 0], before.values[before.groups == 0]
    )
