"""Our three miners against pyfim (C Eclat) and mlxtend on random and real baskets.

pyfim leaves out every itemset contained in *all* baskets (it treats them as part of the empty
set's closure); we report them, as mlxtend does, so they are removed from our side before
comparing, and closed/maximal comparisons skip inputs with such an item.
"""

from __future__ import annotations

import fim
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlxtend.frequent_patterns import apriori as mlx_apriori
from mlxtend.frequent_patterns import fpgrowth as mlx_fpgrowth

from crmlens.basket import baskets_from_lists, frequent_itemsets
from tests.basket.conftest import as_lists

ALGORITHMS = ["eclat", "fpgrowth", "apriori"]
TARGETS = {"all": "s", "closed": "c", "maximal": "m"}


def _ours(baskets, min_count, max_len=None, algorithm="eclat", kind="all"):
    r = frequent_itemsets(baskets, min_support=min_count, max_len=max_len,
                          algorithm=algorithm, kind=kind)
    return dict(zip(r.items, r.counts.tolist()))


def _pyfim(baskets, min_count, max_len=None, kind="all"):
    extra = {"zmax": max_len} if max_len else {}
    found = fim.eclat(as_lists(baskets), supp=-min_count, target=TARGETS[kind], report="a",
                      **extra)
    return {tuple(sorted(s)): c for s, c in found}


def _without_universal(found, n_baskets):
    return {s: c for s, c in found.items() if c < n_baskets}


def _mlxtend(baskets, min_count, max_len=None, miner=mlx_fpgrowth):
    rows = np.repeat(np.arange(baskets.n_baskets), baskets.sizes)
    onehot = np.zeros((baskets.n_baskets, baskets.n_items), dtype=bool)  # small inputs only
    onehot[rows, baskets.indices] = True
    frame = pd.DataFrame(onehot, columns=range(baskets.n_items))
    found = miner(frame, min_support=min_count / baskets.n_baskets, max_len=max_len,
                  use_colnames=True)
    return {tuple(sorted(s)): int(round(v * baskets.n_baskets))
            for s, v in zip(found["itemsets"], found["support"])}


@st.composite
def basket_lists(draw):
    n_items = draw(st.integers(1, 12))
    rows = draw(st.lists(st.lists(st.integers(0, n_items - 1), max_size=n_items),
                         min_size=1, max_size=60))
    min_count = draw(st.integers(1, max(1, len(rows) // 3)))
    max_len = draw(st.one_of(st.none(), st.integers(1, 4)))
    return rows, min_count, max_len


@settings(max_examples=60, deadline=None)
@given(basket_lists())
def test_random_baskets_match_pyfim(case):
    rows, min_count, max_len = case
    baskets = baskets_from_lists(rows)
    if baskets.n_items == 0:
        return
    universal = (np.bincount(baskets.indices) == baskets.n_baskets).any()
    for kind in TARGETS:
        if kind != "all" and universal:
            continue
        expected = _pyfim(baskets, min_count, max_len, kind)
        for algorithm in ALGORITHMS:
            got = _ours(baskets, min_count, max_len, algorithm, kind)
            assert _without_universal(got, baskets.n_baskets) == expected, (algorithm, kind)


@settings(max_examples=30, deadline=None)
@given(basket_lists())
def test_random_baskets_match_mlxtend(case):
    rows, min_count, max_len = case
    baskets = baskets_from_lists(rows)
    if baskets.n_items == 0:
        return
    expected = _mlxtend(baskets, min_count, max_len)
    assert _mlxtend(baskets, min_count, max_len, miner=mlx_apriori) == expected
    for algorithm in ALGORITHMS:
        assert _ours(baskets, min_count, max_len, algorithm) == expected, algorithm


@pytest.mark.parametrize("seed", range(3))
def test_denser_random_baskets_match_pyfim(seed):
    # long itemsets (up to ~10 items): deep recursion in every miner
    rng = np.random.default_rng(100 + seed)
    n_items = 25
    core = rng.choice(n_items, 10, replace=False)
    rows = []
    for _ in range(400):
        row = set(np.flatnonzero(rng.random(n_items) < 0.15).tolist())
        if rng.random() < 0.4:
            row |= set(core[rng.random(10) < 0.8].tolist())
        rows.append(sorted(row))
    baskets = baskets_from_lists(rows)
    for kind in TARGETS:
        expected = _pyfim(baskets, 30, None, kind)
        for algorithm in ALGORITHMS:
            assert _ours(baskets, 30, None, algorithm, kind) == expected, (algorithm, kind)


def test_groceries_match_pyfim_and_mlxtend(groceries):
    assert groceries.n_baskets == 9_835 and groceries.n_items == 169
    for min_count in (100, 20):   # about 1 % and 0.2 %
        expected = _pyfim(groceries, min_count)
        for algorithm in ALGORITHMS:
            assert _ours(groceries, min_count, algorithm=algorithm) == expected, algorithm
    assert _ours(groceries, 50) == _mlxtend(groceries, 50)
    for kind in ("closed", "maximal"):
        expected = _pyfim(groceries, 10, None, kind)
        for algorithm in ALGORITHMS:
            assert _ours(groceries, 10, None, algorithm, kind) == expected, (algorithm, kind)


def test_groceries_known_counts(groceries):
    result = frequent_itemsets(groceries, min_support=0.1)
    named = {tuple(result.item_ids[i] for i in s): c for s, c in zip(result.items,
                                                                    result.counts.tolist())}
    # figures of the data set's README (arules summary)
    assert named[("whole milk",)] == 2513 and named[("other vegetables",)] == 1903
    assert named[("rolls/buns",)] == 1809 and named[("soda",)] == 1715


def test_online_retail_matches_pyfim(retail_baskets):
    for support in (0.02, 0.01):
        result = frequent_itemsets(retail_baskets, min_support=support)
        expected = _pyfim(retail_baskets, result.min_count)
        assert dict(zip(result.items, result.counts.tolist())) == expected
        for algorithm in ("fpgrowth", "apriori"):
            assert _ours(retail_baskets, result.min_count, algorithm=algorithm) == expected
    closed = _ours(retail_baskets, 204, kind="closed")
    assert closed == _pyfim(retail_baskets, 204, kind="closed")
    assert _ours(retail_baskets, 204, kind="maximal") == _pyfim(retail_baskets, 204,
                                                                 kind="maximal")


@pytest.mark.slow
def test_online_retail_low_support_matches_pyfim(retail_baskets):
    result = frequent_itemsets(retail_baskets, min_support=0.005)
    expected = _pyfim(retail_baskets, result.min_count)
    assert len(expected) > 15_000
    assert dict(zip(result.items, result.counts.tolist())) == expected
    for algorithm in ("fpgrowth", "apriori"):
        assert _ours(retail_baskets, result.min_count, algorithm=algorithm) == expected
    for kind in ("closed", "maximal"):
        assert _ours(retail_baskets, result.min_count, kind=kind) == _pyfim(
            retail_baskets, result.min_count, kind=kind)


@pytest.mark.slow
def test_online_retail_matches_mlxtend(retail_baskets):
    # mlxtend needs the dense one-hot matrix (20k x 4k booleans, 80 MB): fine once, in a test
    result = frequent_itemsets(retail_baskets, min_support=0.02)
    assert dict(zip(result.items, result.counts.tolist())) == _mlxtend(retail_baskets,
                                                                       result.min_count)
