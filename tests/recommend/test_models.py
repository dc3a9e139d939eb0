"""Recommenders on hand-made purchase matrices: golden weights, exclusions, reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from crmlens.errors import InputError
from crmlens.recommend import (
    SOURCES,
    HybridRecommender,
    Interactions,
    ItemCFRecommender,
    PopularRecommender,
    RulesRecommender,
)
from crmlens.recommend.evaluate import Split, grade, ranking_metrics

ITEMS = np.array(["A", "B", "C", "D"], dtype=object)


def make(customers: list[list[int]], orders: list[list[int]] | None = None) -> Interactions:
    def csr(rows):
        r = [i for i, row in enumerate(rows) for _ in row]
        c = [j for row in rows for j in row]
        return sp.csr_matrix((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), 4))

    return Interactions(customers=csr(customers), orders=csr(orders or customers),
                        customer_ids=np.array([f"c{i}" for i in range(len(customers))],
                                              dtype=object),
                        item_ids=ITEMS, item_names=np.array(["a", "b", "c", "d"], dtype=object))


def test_rule_confidence_golden():
    # A in 4 orders, A&B in 3, A&C in 1; B in 4 orders; 6 orders in all.
    data = make([[0, 1], [0, 1], [0, 1], [0, 2], [1], [3]])
    model = RulesRecommender(min_count=1, min_lift=1.0).fit(data)
    w = model.weights_.toarray()
    assert w[0, 1] == pytest.approx(3 / 4)   # conf(A->B); lift = 0.75 / (4/6) > 1
    assert w[0, 2] == pytest.approx(1 / 4)   # conf(A->C) = .25, lift = .25 / (1/6) > 1
    assert w[1, 0] == pytest.approx(3 / 4)
    assert w[0, 3] == 0 and np.all(np.diag(w) == 0)
    strict = RulesRecommender(min_count=2).fit(data).weights_.toarray()
    assert strict[0, 2] == 0 and strict[0, 1] == pytest.approx(0.75)


def test_item_cf_cosine_and_jaccard_golden():
    data = make([[0, 1], [0, 1], [0], [1, 2]])
    cos = ItemCFRecommender(min_count=1).fit(data).weights_.toarray()
    assert cos[0, 1] == pytest.approx(2 / np.sqrt(3 * 3))
    assert cos[1, 2] == pytest.approx(1 / np.sqrt(3 * 1))
    jac = ItemCFRecommender(similarity="jaccard", min_count=1).fit(data).weights_.toarray()
    assert jac[0, 1] == pytest.approx(2 / (3 + 3 - 2))


def test_neighbours_keep_the_strongest_only():
    data = make([[0, 1], [0, 1], [0, 2], [1, 2], [0, 3]])
    w = ItemCFRecommender(min_count=1, neighbours=1).fit(data).weights_
    assert np.all(np.diff(w.indptr) <= 1)
    assert w[0].nonzero()[1].tolist() == [1]


def test_recommend_excludes_seen_filters_catalogue_and_names_the_reason():
    data = make([[0, 1], [0, 1], [0, 1], [0, 2], [1, 2], [0]])
    model = RulesRecommender(min_count=1, min_lift=0.0).fit(data)
    top = model.recommend(data.customers[[5]], ["c5"], k=3)
    assert 0 not in top.items[0]                      # already bought
    assert top.items[0, 0] == 1                       # conf(A->B) = 3/5 beats conf(A->C)
    assert SOURCES[top.sources[0, 0]] == "rules" and top.reason_items[0, 0] == 0
    allowed = np.array([True, False, True, True])
    top = model.recommend(data.customers[[5]], ["c5"], k=3, allowed=allowed)
    assert 1 not in top.items[0] and top.items[0, 0] == 2
    repeats = model.recommend(data.customers[[3]], ["c3"], k=4, exclude_seen=False)
    assert 0 in repeats.items[0]
    assert np.all(top.items[0][top.scores[0] == 0] == -1)  # padding, never a zero-score item


def test_popular_uses_the_segment_else_overall():
    data = make([[0], [0], [0], [1], [1], [2]])
    segments = {"c3": "s", "c4": "s"}
    model = PopularRecommender(min_segment_customers=2).fit(data, segments)
    top = model.recommend(sp.csr_matrix((2, 4)), ["c3", "c0"], k=1)
    assert top.items[:, 0].tolist() == [1, 0]
    assert [SOURCES[s] for s in top.sources[:, 0]] == ["popular_segment", "popular"]


def test_hybrid_fills_with_popularity_and_checks_params():
    data = make([[0, 1], [0, 1], [0, 1], [2], [2], [3]])
    model = HybridRecommender(rules_min_count=1, cf_min_count=1).fit(data)
    new_customer = model.recommend(sp.csr_matrix((1, 4)), ["new"], k=2)
    assert SOURCES[new_customer.sources[0, 0]] == "popular"
    buyer = model.recommend(data.customers[[0]], ["c0"], k=1)
    assert buyer.items[0, 0] in (2, 3)
    with pytest.raises(InputError):
        HybridRecommender(rules_weight=-1).fit(data)
    with pytest.raises(InputError):
        RulesRecommender(neighbours=0).fit(data)
    with pytest.raises(NotFittedError):
        ItemCFRecommender().recommend(data.customers, data.customer_ids)


def test_ranking_metrics_golden():
    data = make([[0], [1]])
    relevant = sp.csr_matrix(np.array([[0, 1, 1, 0], [0, 0, 0, 0]], np.float32))
    split = Split(data, relevant, np.array([3, 1]), pd.Timestamp("2020-01-01").date(), None)
    items = np.array([[1, 3], [2, -1]])
    m = ranking_metrics(items, split, np.array([0, 1]), k=2)
    assert m["precision"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["recall"] == pytest.approx((1 / 3 + 0) / 2)   # item outside the catalogue counts
    assert m["hit_rate"] == pytest.approx(0.5)
    assert m["coverage"] == pytest.approx(3 / 4)
    base = {"precision": 0.1, "recall": 0.1}
    assert grade({"precision": 0.2, "recall": 0.2}, base) == "better"
    assert grade({"precision": 0.1, "recall": 0.105}, base) == "similar"
    assert grade({"precision": 0.05, "recall": 0.2}, base) == "worse"
