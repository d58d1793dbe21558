"""Per-customer features computed in Postgres: what a segmentation will see of a customer."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, text
from sqlmodel import Session

from services.segment.features import (
    FEATURE_SETS,
    FeatureSetDoesNotExist,
    compute_features,
    compute_features_in_parts,
    describe_feature_set,
    load_matrix,
)
from services.segment.features import matrix as matrix_module
from services.segment.features.sql import vectors_sql
from shared.db import session_scope

pytestmark = pytest.mark.integration

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NAMES = FEATURE_SETS["v1"].names


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection) as session:
            yield session
        transaction.rollback()


@pytest.fixture
def tenant(session: Session) -> int:
    return create_tenant(session)


# --- builders ------------------------------------------------------------------------


def _key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _insert(session: Session, table: str, **values: Any) -> int:
    """Insert a row with plain SQL; its ``id``."""
    columns, params = ", ".join(values), ", ".join(f":{name}" for name in values)
    statement = text(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id")
    return int(session.execute(statement, values).scalar_one())


def create_tenant(session: Session) -> int:
    return _insert(session, "tenant", name=_key("shop"))


def create_customer(
    session: Session, tenant: int, signup_at: datetime | None = AS_OF - 400 * DAY
) -> int:
    return _insert(
        session, "customer", tenant_id=tenant, customer_id=_key("c"), signup_at=signup_at
    )


def create_product(session: Session, tenant: int, product_id: str, category: str) -> None:
    product = {"product_id": product_id, "name": product_id, "category": category, "price": 10}
    _insert(session, "product", tenant_id=tenant, **product)


def create_order(
    session: Session,
    tenant: int,
    customer: int,
    placed_at: datetime,
    *,
    lines: Sequence[tuple[str, int, float]] = (("p-1", 1, 50.0),),
    channel: str = "web",
    discount_code: str | None = "SALE",
) -> None:
    total = sum(quantity * price for _, quantity, price in lines)
    order = {"order_id": _key("o"), "placed_at": placed_at, "currency": "EUR", "total": total}
    order |= {"channel": channel, "discount_code": discount_code}
    order_pk = _insert(session, "orders", tenant_id=tenant, customer_pk=customer, **order)
    insert_line = text(
        "INSERT INTO order_line"
        " (order_pk, line_no, tenant_id, customer_pk, product_id, quantity, unit_price)"
        " VALUES (:order, :number, :tenant, :customer, :product, :quantity, :price)"
    )
    for number, (product, quantity, price) in enumerate(lines, start=1):
        line = {"product": product, "quantity": quantity, "price": price}
        session.execute(
            insert_line,
            {"order": order_pk, "number": number, "tenant": tenant, "customer": customer, **line},
        )


def create_event(session: Session, tenant: int, customer: int, kind: str, at: datetime) -> None:
    event = {"event_id": _key("e"), "type": kind, "occurred_at": at}
    _insert(session, "event", tenant_id=tenant, customer_pk=customer, **event)


def create_text(session: Session, tenant: int, customer: int, kind: str, at: datetime) -> int:
    """A review or (with ``kind="transcript"``) a support transcript; its primary key."""
    if kind == "review":
        review = {"review_id": _key("r"), "text": "…", "created_at": at}
        return _insert(session, "review", tenant_id=tenant, customer_pk=customer, **review)
    transcript = {"transcript_id": _key("t"), "channel": "chat", "started_at": at}
    return _insert(session, "transcript", tenant_id=tenant, customer_pk=customer, **transcript)


def create_analysis(
    session: Session,
    tenant: int,
    customer: int,
    source_pk: int,
    score: float,
    *,
    kind: str = "review",
    details: dict[str, Any] | None = None,
    **overrides: Any,
) -> None:
    """An analysis of a review (or ``kind``); ``overrides`` set other text_analysis columns."""
    label = "negative" if score < -0.05 else "positive" if score > 0.05 else "neutral"
    analysis = {
        "customer_pk": customer,
        "source_kind": kind,
        "model_version": "lexicon-1",
        "backend": "lexicon",
        "status": "ok",
        "label": label,
        "score": score,
        "details": Jsonb(details or {}),
        "occurred_at": AS_OF - DAY,
        **overrides,
    }
    _insert(session, "text_analysis", tenant_id=tenant, source_pk=source_pk, **analysis)


def features(session: Session, customer: int) -> dict[str, float]:
    """The customer's vector as every reader sees it: stored features, then latest scores."""
    query = text(vectors_sql(FEATURE_SETS["v1"], where="f.customer_pk = :c"))
    row = session.execute(query, {"c": customer}).one()
    return dict(zip(NAMES, row.feature_values, strict=True))


def computed(session: Session, tenant: int, customer: int) -> dict[str, float]:
    compute_features(session, tenant_id=tenant, as_of=AS_OF)
    return features(session, customer)


# --- behaviour ---------------------------------------------------------------------------


def test_three_orders_ten_days_apart(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant)
    for days_ago in (25, 15, 5):
        create_order(session, tenant, customer, AS_OF - days_ago * DAY, lines=[("p-1", 2, 30.0)])

    got = computed(session, tenant, customer)

    assert (got["has_orders"], got["frequency"], got["has_repeat_orders"]) == (1, 3, 1)
    assert got["recency_days"] == pytest.approx(5)
    assert got["ipt_mean_days"] == pytest.approx(10)
    assert got["ipt_std_days"] == pytest.approx(0, abs=1e-9)
    assert got["monetary"] == pytest.approx(180)
    assert got["avg_order_value"] == pytest.approx(60)
    assert got["items_per_order"] == 2
    assert got["avg_item_price"] == pytest.approx(30)
    assert got["tenure_days"] == pytest.approx(400)


def test_a_customer_without_orders_gets_defined_values(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant, signup_at=AS_OF - 30 * DAY)

    got = computed(session, tenant, customer)

    assert all(math.isfinite(value) for value in got.values())
    assert (got["has_orders"], got["frequency"], got["monetary"]) == (0, 0, 0)
    assert got["recency_days"] == pytest.approx(30)  # as long as they have been around
    assert got["has_review_sentiment"] == got["review_sentiment_decayed"] == 0


def test_activity_after_as_of_is_ignored(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant)
    create_order(session, tenant, customer, AS_OF - 20 * DAY)
    create_order(session, tenant, customer, AS_OF + DAY)
    for at in (AS_OF - 2 * DAY, AS_OF + 2 * DAY, AS_OF - 120 * DAY):
        create_event(session, tenant, customer, "page_view", at)
        create_event(session, tenant, customer, "email_open", at)
    create_event(session, tenant, customer, "email_click", AS_OF - 3 * DAY)

    got = computed(session, tenant, customer)

    assert got["frequency"] == 1
    assert got["recency_days"] == pytest.approx(20)
    assert (got["sessions_90d"], got["email_opens_90d"], got["email_clicks_90d"]) == (1, 1, 1)
    assert got["email_click_rate_90d"] == pytest.approx(1)


def test_refreshing_one_customer_leaves_the_others_alone(session: Session, tenant: int) -> None:
    first, second = create_customer(session, tenant), create_customer(session, tenant)
    for customer in (first, second):
        create_order(session, tenant, customer, AS_OF - 10 * DAY)
    assert compute_features(session, tenant_id=tenant, as_of=AS_OF) == 2
    before = features(session, second)
    create_order(session, tenant, first, AS_OF + DAY)
    create_order(session, tenant, second, AS_OF + DAY)

    later = AS_OF + 2 * DAY
    written = compute_features(session, tenant_id=tenant, as_of=later, customer_pks=[first])

    assert written == 1
    assert features(session, first)["frequency"] == 2
    assert features(session, second) == before
    matrix = load_matrix(session, tenant_id=tenant)
    assert (matrix.as_of, matrix.latest_as_of) == (AS_OF, later)


def test_recent_negative_review_outweighs_an_old_positive_one(
    session: Session, tenant: int
) -> None:
    customer = create_customer(session, tenant)
    for score, days_ago in ((0.9, 365), (-0.6, 5)):
        review = create_text(session, tenant, customer, "review", AS_OF - days_ago * DAY)
        create_analysis(
            session, tenant, customer, review, score, occurred_at=AS_OF - days_ago * DAY
        )

    got = computed(session, tenant, customer)

    assert got["has_review_sentiment"] == 1
    assert -0.6 < got["review_sentiment_decayed"] < -0.4  # not the plain mean, +0.15
    assert got["review_negative_share"] == pytest.approx(0.5)


def test_only_the_newest_usable_analysis_of_a_text_counts(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant)
    review = create_text(session, tenant, customer, "review", AS_OF - 5 * DAY)
    create_analysis(session, tenant, customer, review, 0.8, analyzed_at=AS_OF - 3 * DAY)
    create_analysis(
        session, tenant, customer, review, -0.5, model_version="m-2", analyzed_at=AS_OF - DAY
    )
    other = create_text(session, tenant, customer, "review", AS_OF - 5 * DAY)
    create_analysis(session, tenant, customer, other, 0.0, status="unsupported_language")

    got = computed(session, tenant, customer)

    assert got["review_sentiment_decayed"] == pytest.approx(-0.5)
    assert got["review_negative_share"] == 1


def test_support_contacts_and_refund_signs(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant, signup_at=AS_OF - 120 * DAY)
    order = AS_OF - 60 * DAY
    create_order(session, tenant, customer, order)
    create_order(session, tenant, customer, order + DAY)
    create_event(session, tenant, customer, "return", order + 5 * DAY)
    create_event(session, tenant, customer, "refund", order + 9 * DAY)
    create_event(session, tenant, customer, "support_contact", order + 4 * DAY)
    transcript = create_text(session, tenant, customer, "transcript", order + 8 * DAY)
    cues = {"cues": {"refund": [2]}, "churn_risk": False}
    create_analysis(session, tenant, customer, transcript, -0.7, kind="transcript", details=cues)

    got = computed(session, tenant, customer)

    assert (got["return_rate"], got["refund_rate"]) == (0.5, 0.5)
    assert got["support_contacts_per_30d"] == pytest.approx(2 * 30 / 120)
    assert got["transcript_sentiment_decayed"] < 0
    assert (got["transcript_refund_share"], got["transcript_churn_share"]) == (1, 0)


def test_channel_discount_habits_and_category_mix(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant)
    create_product(session, tenant, "p-knit", "knitwear")
    create_product(session, tenant, "p-shoe", "shoes")
    saturday_evening = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    knitwear, shoes = [("p-knit", 3, 20.0)], [("p-shoe", 1, 90.0)]
    create_order(session, tenant, customer, saturday_evening, lines=knitwear, channel="app")
    create_order(
        session,
        tenant,
        customer,
        saturday_evening - 3 * DAY,
        lines=shoes,
        channel="store",
        discount_code=None,
    )

    got = computed(session, tenant, customer)

    assert (got["channel_app_share"], got["channel_store_share"]) == (0.5, 0.5)
    assert (got["channel_web_share"], got["channel_other_share"]) == (0, 0)
    assert got["discount_share"] == 0.5
    assert (got["weekend_share"], got["evening_share"]) == (0.5, 1)
    assert got["hour_cos"] == pytest.approx(math.cos(math.radians(300)))
    assert (got["category_count"], got["top_category_share"]) == (2, 0.75)
    assert got["category_entropy"] == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    )


def test_a_cart_without_an_order_the_same_or_next_day_is_abandoned(
    session: Session, tenant: int
) -> None:
    customer = create_customer(session, tenant)
    for days_ago in (30, 20, 20, 10):
        create_event(session, tenant, customer, "add_to_cart", AS_OF - days_ago * DAY)
    create_order(session, tenant, customer, AS_OF - 19 * DAY)  # the day after the carts

    got = computed(session, tenant, customer)

    assert (got["add_to_carts_90d"], got["abandoned_cart_days_90d"]) == (4, 2)


def test_a_refresh_computes_what_a_full_run_computes(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant)
    create_product(session, tenant, "p-1", "home")
    for days_ago in (40, 31, 3):
        create_order(session, tenant, customer, AS_OF - days_ago * DAY, channel="app")
    for kind in ("add_to_cart", "search", "return", "support_contact"):
        create_event(session, tenant, customer, kind, AS_OF - 12 * DAY)
    for kind in ("review", "transcript"):
        source = create_text(session, tenant, customer, kind, AS_OF - 20 * DAY)
        create_analysis(session, tenant, customer, source, -0.3, kind=kind)
    full = computed(session, tenant, customer)

    compute_features(session, tenant_id=tenant, as_of=AS_OF, customer_pks=[customer])

    assert features(session, customer) == pytest.approx(full)
    assert (full["frequency"], full["category_count"]) == (3, 1)


def test_other_tenants_customers_stay_out(session: Session, tenant: int) -> None:
    mine, theirs = (
        create_customer(session, tenant),
        create_customer(session, create_tenant(session)),
    )

    assert compute_features(session, tenant_id=tenant, as_of=AS_OF) == 1
    assert compute_features(session, tenant_id=tenant, as_of=AS_OF, customer_pks=[theirs]) == 0
    assert load_matrix(session, tenant_id=tenant).customer_pks.tolist() == [mine]


def test_a_refresh_is_not_overwritten_by_an_older_run(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant)
    tomorrow = datetime.now(UTC) + DAY
    compute_features(session, tenant_id=tenant, as_of=tomorrow, customer_pks=[customer])

    assert compute_features(session, tenant_id=tenant) == 0
    assert load_matrix(session, tenant_id=tenant).as_of == tomorrow


def test_matrix_comes_back_in_feature_set_order(
    session: Session, tenant: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matrix_module, "_CHUNK_BYTES", 1500)  # decode in several chunks
    customers = [create_customer(session, tenant) for _ in range(7)]
    for count, customer in enumerate(customers):
        for number in range(count):
            create_order(session, tenant, customer, AS_OF - (number + 1) * DAY)
    compute_features(session, tenant_id=tenant, as_of=AS_OF)

    matrix = load_matrix(session, tenant_id=tenant)

    assert matrix.names == NAMES
    assert matrix.customer_pks.tolist() == sorted(customers)
    assert matrix.values.shape == (7, len(NAMES))
    assert matrix.values.dtype == np.float64
    frequency = matrix.values[:, NAMES.index("frequency")]
    assert frequency.tolist() == [float(n) for n in range(7)]
    assert matrix.as_of == AS_OF


def test_an_empty_tenant_loads_an_empty_matrix(session: Session, tenant: int) -> None:
    matrix = load_matrix(session, tenant_id=tenant)

    assert matrix.values.shape == (0, len(NAMES))
    assert matrix.as_of is None


def test_feature_sets_describe_themselves() -> None:
    described = describe_feature_set("v1")

    assert [d["name"] for d in described] == NAMES
    assert all(d["description"] for d in described)
    with pytest.raises(FeatureSetDoesNotExist):
        describe_feature_set("v0")


def test_purchase_history_merges_orders_of_one_day(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant)
    first = AS_OF.replace(hour=9) - 40 * DAY
    create_order(session, tenant, customer, first, lines=[("p-1", 1, 10.0)])
    create_order(session, tenant, customer, first + timedelta(hours=5), lines=[("p-1", 1, 20.0)])
    create_order(session, tenant, customer, first + 10 * DAY, lines=[("p-1", 2, 30.0)])
    create_order(session, tenant, customer, first + 10 * DAY + timedelta(hours=1))
    create_order(session, tenant, customer, first + 30 * DAY, lines=[("p-1", 1, 40.0)])

    got = computed(session, tenant, customer)

    assert got["frequency"] == 5  # orders
    assert got["purchase_days"] == 3  # days: BG/NBD's frequency is this minus one
    assert got["first_purchase_age_days"] == 40
    assert got["last_purchase_age_days"] == 10
    assert got["repeat_day_spend"] == pytest.approx((60.0 + 50.0 + 40.0) / 2)  # days 2 and 3


def test_a_single_purchase_day_has_no_repeat_spend(session: Session, tenant: int) -> None:
    customer = create_customer(session, tenant)
    create_order(session, tenant, customer, AS_OF - 3 * DAY, lines=[("p-1", 1, 10.0)])

    got = computed(session, tenant, customer)

    assert (got["purchase_days"], got["repeat_day_spend"]) == (1, 0)
    assert got["first_purchase_age_days"] == got["last_purchase_age_days"] == 3


def test_the_latest_clv_and_p_alive_are_features(session: Session, tenant: int) -> None:
    scored, unscored = create_customer(session, tenant), create_customer(session, tenant)
    session.execute(
        text(
            "INSERT INTO customer_score (customer_pk, tenant_id, clv, p_alive)"
            " VALUES (:c, :t, 412.5, 0.83)"
        ),
        {"c": scored, "t": tenant},
    )
    compute_features(session, tenant_id=tenant, as_of=AS_OF)

    got = features(session, scored)
    assert got["clv"] == pytest.approx(412.5)
    assert got["p_alive"] == pytest.approx(0.83)
    assert features(session, unscored)["clv"] == 0  # not scored yet: no orders to go by
    # Scores are read with the vector: a new score shows without recomputing features.
    session.execute(
        text("UPDATE customer_score SET clv = 99 WHERE customer_pk = :c"), {"c": scored}
    )
    assert features(session, scored)["clv"] == 99


@pytest.mark.parametrize("parts", [1, 2, 3, 20])
def test_a_run_in_parts_computes_what_one_statement_computes(engine: Engine, parts: int) -> None:
    with session_scope(engine) as session:
        tenant = create_tenant(session)
        create_product(session, tenant, "p-1", "home")
        customers = [create_customer(session, tenant) for _ in range(7)]
        for n, customer in enumerate(customers):
            for days_ago in range(3, 3 + 11 * n, 11):  # 0, 1, ... 6 orders
                create_order(session, tenant, customer, AS_OF - days_ago * DAY)
            create_event(session, tenant, customer, "search", AS_OF - (n + 1) * DAY)
        bystander = create_customer(session, create_tenant(session))

    written = compute_features_in_parts(engine, tenant_id=tenant, as_of=AS_OF, parts=parts)

    with session_scope(engine) as session:
        in_parts = {customer: features(session, customer) for customer in customers}
        assert load_matrix(session, tenant_id=tenant).customer_pks.tolist() == sorted(customers)
        bystanders = session.execute(
            text("SELECT count(*) FROM customer_features WHERE customer_pk = :c"),
            {"c": bystander},
        ).scalar_one()
    with engine.connect() as connection, Session(bind=connection) as session:
        compute_features(session, tenant_id=tenant, as_of=AS_OF)  # rolled back on close
        at_once = {customer: features(session, customer) for customer in customers}
    assert written == len(customers)
    assert bystanders == 0
    for customer in customers:
        assert in_parts[customer] == pytest.approx(at_once[customer])
    assert [in_parts[c]["frequency"] for c in customers] == list(range(7))
