"""Frequent itemsets: golden toy cases, thresholds, errors, the result type."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from crmlens.basket import baskets_from_lists, frequent_itemsets, min_count_for
from crmlens.errors import InputError

ALGORITHMS = ["eclat", "fpgrowth", "apriori"]

# A textbook example (Han, Kamber & Pei, table 6.1): nine baskets over five items.
HAN = [["I1", "I2", "I5"], ["I2", "I4"], ["I2", "I3"], ["I1", "I2", "I4"], ["I1", "I3"],
       ["I2", "I3"], ["I1", "I3"], ["I1", "I2", "I3", "I5"], ["I1", "I2", "I3"]]
# Frequent itemsets at a count of 2, by hand.
HAN_FREQUENT = {
    ("I1",): 6, ("I2",): 7, ("I3",): 6, ("I4",): 2, ("I5",): 2,
    ("I1", "I2"): 4, ("I1", "I3"): 4, ("I1", "I5"): 2, ("I2", "I3"): 4, ("I2", "I4"): 2,
    ("I2", "I5"): 2, ("I1", "I2", "I3"): 2, ("I1", "I2", "I5"): 2,
}


def _named(result):
    return {tuple(result.item_ids[i] for i in s): int(c)
            for s, c in zip(result.items, result.counts)}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_textbook_example(algorithm):
    result = frequent_itemsets(baskets_from_lists(HAN), min_support=2, algorithm=algorithm)
    assert _named(result) == HAN_FREQUENT
    assert result.min_count == 2 and result.n_baskets == 9
    assert result.algorithm == algorithm and result.kind == "all"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_closed_and_maximal_by_hand(algorithm):
    baskets = baskets_from_lists(HAN)
    closed = frequent_itemsets(baskets, min_support=2, algorithm=algorithm, kind="closed")
    maximal = frequent_itemsets(baskets, min_support=2, algorithm=algorithm, kind="maximal")
    # closed: no superset with the same count
    assert set(_named(closed)) == {("I1",), ("I2",), ("I3",), ("I1", "I2"), ("I1", "I3"),
                                   ("I2", "I3"), ("I2", "I4"), ("I1", "I2", "I3"),
                                   ("I1", "I2", "I5")}
    assert set(_named(maximal)) == {("I2", "I4"), ("I1", "I2", "I3"), ("I1", "I2", "I5")}
    # with max_len, judged against all supersets: {I1,I2} has the frequent superset {I1,I2,I3}
    short = frequent_itemsets(baskets, min_support=2, max_len=2, algorithm=algorithm,
                              kind="maximal")
    assert set(_named(short)) == {("I2", "I4")}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_max_len_and_fraction(algorithm):
    baskets = baskets_from_lists(HAN)
    result = frequent_itemsets(baskets, min_support=2 / 9, max_len=2, algorithm=algorithm)
    assert result.min_count == 2
    assert _named(result) == {k: v for k, v in HAN_FREQUENT.items() if len(k) <= 2}


def test_min_count_is_the_exact_ceiling():
    # 0.005 is not exactly representable; its decimal value is meant: 100 of 20,000
    assert min_count_for(0.005, 20_000) == 100
    assert min_count_for(0.005, 20_001) == 101
    assert min_count_for(0.3, 10) == 3
    assert min_count_for(1.0, 7) == 7
    assert min_count_for(1e-9, 7) == 1
    assert min_count_for(5, 3) == 5
    assert min_count_for(np.int64(4), 3) == 4


@pytest.mark.parametrize("value", [0, -1, 0.0, 1.5, -0.2, float("nan"), True, "0.1", None])
def test_bad_min_support(value):
    with pytest.raises(InputError) as err:
        frequent_itemsets(baskets_from_lists(HAN), min_support=value)
    assert err.value.key == "error.basket.bad_min_support"


@pytest.mark.parametrize("kwargs, key", [
    ({"algorithm": "magic"}, "error.basket.bad_algorithm"),
    ({"kind": "open"}, "error.basket.bad_itemset_kind"),
    ({"max_len": 0}, "error.basket.bad_max_len"),
    ({"max_len": 2.5}, "error.basket.bad_max_len"),
])
def test_bad_options(kwargs, key):
    with pytest.raises(InputError) as err:
        frequent_itemsets(baskets_from_lists(HAN), **kwargs)
    assert err.value.key == key
    assert "{" not in err.value.message("en") and "{" not in err.value.message("zh")


def test_no_baskets_is_an_input_error():
    with pytest.raises(InputError) as err:
        frequent_itemsets(baskets_from_lists([]))
    assert err.value.key == "error.basket.empty"


def test_nothing_frequent_is_an_empty_result():
    result = frequent_itemsets(baskets_from_lists(HAN), min_support=10)
    assert len(result) == 0 and result.to_frame().empty


def test_result_type():
    result = frequent_itemsets(baskets_from_lists(HAN), min_support=2)
    codes = {label: i for i, label in enumerate(result.item_ids)}
    assert result.count_of((codes["I3"], codes["I1"])) == 4
    with pytest.raises(KeyError):
        result.count_of((codes["I4"], codes["I5"]))
    frame = result.to_frame()
    assert list(frame.columns) == ["itemset", "names", "length", "count", "support"]
    assert frame["itemset"].iloc[-1] == ["I1", "I2", "I5"]
    assert frame["length"].tolist() == sorted(frame["length"])
    np.testing.assert_allclose(frame["support"], frame["count"] / 9)


def _brute_force(baskets, min_count, max_len):
    rows = [set(baskets.indices[baskets.indptr[i]:baskets.indptr[i + 1]].tolist())
            for i in range(baskets.n_baskets)]
    found = {}
    for k in range(1, min(max_len, baskets.n_items) + 1):
        level = 0
        for combo in itertools.combinations(range(baskets.n_items), k):
            count = sum(1 for r in rows if r.issuperset(combo))
            if count >= min_count:
                found[combo] = count
                level += 1
        if not level:
            break
    return found


@pytest.mark.parametrize("seed", range(12))
def test_random_baskets_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(2, 10))
    p = rng.uniform(0.05, 0.7, n_items)
    rows = [[j for j in range(n_items) if rng.random() < p[j]]
            for _ in range(int(rng.integers(1, 120)))]
    baskets = baskets_from_lists(rows)
    if baskets.n_items == 0:
        return
    min_count = int(rng.integers(1, max(2, baskets.n_baskets // 4)))
    max_len = int(rng.integers(1, 6))
    expected = _brute_force(baskets, min_count, max_len)
    for algorithm in ALGORITHMS:
        result = frequent_itemsets(baskets, min_support=min_count, max_len=max_len,
                                   algorithm=algorithm)
        assert dict(zip(result.items, result.counts.tolist())) == expected, algorithm
        assert result.items == sorted(result.items, key=lambda s: (len(s), s))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_one_huge_basket_is_bounded_by_max_len(algorithm):
    # 60 items in one basket: 2**60 frequent itemsets at count 1; max_len keeps it small.
    baskets = baskets_from_lists([list(range(60)), [0, 1], [2]])
    result = frequent_itemsets(baskets, min_support=1, max_len=2, algorithm=algorithm)
    assert len(result) == 60 + 60 * 59 // 2
    assert result.count_of((0, 1)) == 2


@pytest.mark.parametrize("seed", range(4))
def test_eclat_without_the_global_flag_matrix_gives_the_same_itemsets(seed, monkeypatch):
    # Large data skips the frequent-items x baskets flag matrix (over 64 MiB) and cuts each
    # item's bitsets from its basket list instead: same itemsets and counts.
    import crmlens.basket.eclat as eclat

    rng = np.random.default_rng(100 + seed)
    n_items = 12
    p = rng.uniform(0.1, 0.6, n_items)
    rows = [[j for j in range(n_items) if rng.random() < p[j]] for _ in range(300)]
    baskets = baskets_from_lists(rows)
    expected = frequent_itemsets(baskets, min_support=15, algorithm="eclat")
    monkeypatch.setattr(eclat, "_GLOBAL_BYTES", 0)
    small = frequent_itemsets(baskets, min_support=15, algorithm="eclat")
    assert small.items == expected.items
    np.testing.assert_array_equal(small.counts, expected.counts)
    assert dict(zip(small.items, small.counts.tolist())) == _brute_force(baskets, 15, n_items)
