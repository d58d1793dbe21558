"""The recommender's model and metrics, on purchases small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped]

from services.personalize.recommend.evaluate import compare, ndcg_at_k, precision_at_k, time_split
from services.personalize.recommend.model import NO_SEGMENT, Reason, Recommender

pytestmark = pytest.mark.unit


def purchases(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    users = [u for u, items in enumerate(rows) for _ in items]
    items = [i for row in rows for i in row]
    return sp.csr_matrix((np.ones(len(items)), (users, items)), shape=(len(rows), n_items))


def test_precision_and_ndcg_at_k_by_hand() -> None:
    recommended = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]]
    relevant = [{2, 4}, {5}, set()]  # the third bought nothing later: left out
    # user 0: 2 of 4 hit; user 1: 1 of 4 hit -> (0.5 + 0.25) / 2
    assert precision_at_k(recommended, relevant, 4) == pytest.approx(0.375)
    # user 0: hits at ranks 2 and 4 -> (1/log2 3 + 1/log2 5) / (1 + 1/log2 3); user 1: 1/1
    user0 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(recommended, relevant, 4) == pytest.approx((user0 + 1.0) / 2)
    assert precision_at_k(recommended, relevant, 2) == pytest.approx((0.5 + 0.5) / 2)


def test_what_a_customer_bought_is_not_recommended_unless_it_is_a_consumable() -> None:
    rows = [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [0, 1, 2, 3, 4]]
    model = Recommender(factors=4, iterations=5, min_history=1).fit(purchases(rows, 6))
    (picks,) = model.recommend(np.array([0]), 6)
    assert {p.item for p in picks}.isdisjoint({0, 1, 2})
    consumable = np.zeros(6, dtype=bool)
    consumable[1] = True
    (again,) = model.recommend(np.array([0]), 6, repeatable=consumable)
    assert 1 in {p.item for p in again}
    assert {p.item for p in again}.isdisjoint({0, 2})


def test_a_customer_with_little_history_gets_their_segments_popular_products() -> None:
    # segment 0 buys items 0-1, segment 1 buys items 2-3; users 8 and 9 bought nothing
    rows = [[0, 1], [0, 1], [0], [1, 0], [2, 3], [3, 2], [2], [3, 2], [], []]
    segments = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, NO_SEGMENT])
    model = Recommender(factors=2, iterations=3).fit(purchases(rows, 5), segments, 2)
    in_segment, nobody = model.recommend(np.array([8, 9]), 2)
    assert {p.item for p in in_segment} == {2, 3}
    assert {p.reason for p in in_segment} == {Reason.SEGMENT_POPULAR}
    assert {p.reason for p in nobody} == {Reason.POPULAR}
    assert [p.item for p in model.popular(0, 2)] == [0, 1]


def test_an_item_bought_together_with_one_the_customer_has_names_it_as_the_reason() -> None:
    # buyers of item 0 (a tent) nearly always buy item 1 (sleeping bags) too
    rows = [[0, 1], [0, 1], [0, 1, 2], [0, 1], [2, 3], [2, 3], [3, 4], [0, 5]]
    model = Recommender(factors=2, iterations=3, cooc_weight=1.0, min_history=1)
    (picks,) = model.fit(purchases(rows, 6)).recommend(np.array([7]), 1)
    assert (picks[0].item, picks[0].reason, picks[0].because) == (1, Reason.BOUGHT_TOGETHER, 0)


def test_a_customer_gets_what_the_customers_most_like_them_bought_not_the_best_sellers() -> None:
    # customers 0-3 share a taste (items 0-2) and 1-3 all bought item 5; items 6 and 7 are
    # everyone else's best sellers, bought by twelve customers with nothing in common
    rows = [[0, 1, 2], [0, 1, 2, 5], [0, 1, 5], [1, 2, 5]] + [[6, 7, 8 + u] for u in range(12)]
    model = Recommender(neighbours=3, min_history=1).fit(purchases(rows, 20))
    (picks,) = model.recommend(np.array([0]), 3)
    assert picks[0].item == 5
    assert picks[0].reason is Reason.BOUGHT_TOGETHER  # bought with item 0 by customer 1
    # what no similar customer bought follows, the most bought first
    assert [p.item for p in picks[1:]] == [6, 7]
    # without neighbours (ALS and co-purchase) the model still trains and recommends
    plain = Recommender(neighbours=0, factors=2, iterations=3, min_history=1)
    assert plain.fit(purchases(rows, 20)).get_params()["neighbour_weight"] == 0.0


def test_the_time_split_scores_only_new_items_unless_consumable() -> None:
    users = np.array([0, 0, 0, 1, 1])
    items = np.array([0, 1, 0, 2, 3])
    after = np.array([False, False, True, False, True])
    split = time_split(users, items, after, (2, 4))
    assert (split.test_users.tolist(), split.relevant) == ([1], [{3}])
    consumable = np.array([True, False, False, False])
    again = time_split(users, items, after, (2, 4), repeatable=consumable)
    assert (again.test_users.tolist(), again.relevant) == ([0, 1], [{0}, {3}])


def test_on_customers_with_distinct_tastes_the_model_beats_popularity() -> None:
    rng = np.random.default_rng(3)
    users, items, after = [], [], []
    for user in range(300):
        taste = np.arange(10) + 10 * (user % 4)  # four groups of ten products
        # the globally popular products 40-44 are bought by everyone now and then
        bought = [*rng.choice(taste, 4, replace=False), *rng.choice(np.arange(40, 45), 2)]
        for rank, item in enumerate(bought):
            users.append(user)
            items.append(int(item))
            after.append(rank == 3)
    split = time_split(np.array(users), np.array(items), np.array(after), (300, 45))
    result = compare(split, Recommender(factors=8, iterations=10, seed=1), k=10)
    assert result.lift("precision") > 0.3
    assert result.lift("ndcg") > 0.3


def test_a_shop_without_purchases_gets_empty_lists_rather_than_an_error() -> None:
    no_products = Recommender().fit(sp.csr_matrix((3, 0)))
    assert no_products.recommend(np.arange(3), 5) == [[], [], []]
    nothing_bought = Recommender().fit(sp.csr_matrix((2, 4)))
    assert nothing_bought.popular(NO_SEGMENT, 5) == []
    assert all(
        p.reason is Reason.POPULAR for row in nothing_bought.recommend(np.arange(2), 5) for p in row
    )
