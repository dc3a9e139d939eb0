"""Association rules: golden values, exact thresholds, redundancy, the mlxtend oracle."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from crmlens.basket.rules import RULE_COLUMNS, association_rules, exact_threshold
from crmlens.errors import InputError
from tests.basket._brute import brute_itemsets, random_baskets

# 10 baskets: bread in 6, milk in 5, both in 3; butter always with bread (3 times).
TOY = ([["bread", "milk"]] * 3 + [["bread", "butter"]] * 3 + [["milk"]] * 2
       + [["eggs"]] * 2)


def _rule(rules: pd.DataFrame, ant: list[str], con: list[str]) -> pd.Series:
    hit = rules[(rules["antecedent"].map(tuple) == tuple(ant))
                & (rules["consequent"].map(tuple) == tuple(con))]
    assert len(hit) == 1, (ant, con, len(hit))
    return hit.iloc[0]


def test_golden_metrics_by_hand():
    rules = association_rules(brute_itemsets(TOY, min_support=1))
    assert list(rules.columns) == list(RULE_COLUMNS)
    r = _rule(rules, ["bread"], ["milk"])
    n, a, b, c = 10, 6, 5, 3
    assert (r["antecedent_count"], r["consequent_count"], r["count"]) == (a, b, c)
    assert r["support"] == pytest.approx(0.3)
    assert r["confidence"] == pytest.approx(0.5)
    assert r["lift"] == pytest.approx(c * n / (a * b))  # 1.0
    assert r["leverage"] == pytest.approx(0.3 - 0.6 * 0.5)
    assert r["conviction"] == pytest.approx((1 - 0.5) / (1 - 0.5))
    assert r["zhang"] == pytest.approx(0.0)
    certain = _rule(rules, ["butter"], ["bread"])
    assert certain["confidence"] == 1.0 and math.isinf(certain["conviction"])
    # zhang: (c n - a b) / max(c (n - a), a (b - c)) = (30 - 18) / max(21, 9)
    assert certain["zhang"] == pytest.approx(12 / 21)
    assert certain["antecedent_names"] == ["name butter"]


def test_confidence_equal_to_threshold_is_kept():
    # bread -> milk has confidence 3/6 = 0.5 exactly; milk -> bread 3/5 = 0.6.
    items = brute_itemsets(TOY, min_support=1)
    kept = association_rules(items, min_confidence=0.5)
    _rule(kept, ["bread"], ["milk"])
    _rule(association_rules(items, min_confidence="0.6"), ["milk"], ["bread"])
    dropped = association_rules(items, min_confidence=0.5000001)
    assert not ((dropped["antecedent"].map(tuple) == ("bread",))
                & (dropped["consequent"].map(tuple) == ("milk",))).any()


def test_ties_that_float_arithmetic_gets_wrong_are_kept():
    # x in 5 of 10 baskets, y in 4, both in 3: leverage = 0.3 - 0.5 * 0.4 = 0.1 exactly, but
    # in floats it is 0.09999999999999998, so a float filter would drop the rule.
    baskets = [["x", "y"]] * 3 + [["x"]] * 2 + [["y"]] * 1 + [["z"]] * 4
    items = brute_itemsets(baskets, min_support=1)
    rule = _rule(association_rules(items, min_leverage=0.1), ["x"], ["y"])
    assert rule["leverage"] < 0.1  # the float metric shown is below its own threshold
    assert exact_threshold(0.1, "t") == Fraction(1, 10)
    assert exact_threshold("2/3", "t") == Fraction(2, 3)
    # lift = 3 * 10 / (5 * 4) = 1.5 exactly
    _rule(association_rules(items, min_lift=1.5), ["x"], ["y"])
    dropped = association_rules(items, min_lift="1.5000000000000001")
    assert not (dropped["antecedent"].map(tuple) == ("x",)).any()


@pytest.mark.parametrize("option, value, ant, con, keep", [
    ("min_support", 0.3, ["bread"], ["milk"], True),
    ("min_support", 0.31, ["bread"], ["milk"], False),
    ("min_lift", 1, ["bread"], ["milk"], True),
    ("min_lift", 1.01, ["bread"], ["milk"], False),
    ("min_leverage", 0, ["bread"], ["milk"], True),
    ("min_leverage", 0.001, ["bread"], ["milk"], False),
    ("min_conviction", 1, ["bread"], ["milk"], True),
    ("min_conviction", 1.01, ["bread"], ["milk"], False),
    ("min_conviction", 1e9, ["butter"], ["bread"], True),  # infinite conviction
    ("min_zhang", 0, ["bread"], ["milk"], True),
    ("min_zhang", 0.001, ["bread"], ["milk"], False),
    ("min_zhang", "4/7", ["butter"], ["bread"], True),
    ("min_zhang", 0.5715, ["butter"], ["bread"], False),
])
def test_each_filter_is_exact_at_the_boundary(option, value, ant, con, keep):
    rules = association_rules(brute_itemsets(TOY, min_support=1), **{option: value})
    found = ((rules["antecedent"].map(tuple) == tuple(ant))
             & (rules["consequent"].map(tuple) == tuple(con))).any()
    assert found == keep


def test_undefined_zhang_fails_a_zhang_filter():
    # a is in every basket: zhang 0/0 is undefined (NaN), never "passes".
    baskets = [["a", "b"]] * 2 + [["a"]] * 2
    items = brute_itemsets(baskets, min_support=1)
    rules = association_rules(items)
    assert np.isnan(_rule(rules, ["a"], ["b"])["zhang"])
    filtered = association_rules(items, min_zhang=-1)
    assert not (filtered["antecedent"].map(tuple) == ("a",)).any()


def test_redundant_rules_are_pruned():
    # {butter, milk} -> bread is no better than butter -> bread (confidence 1 both).
    baskets = [["bread", "butter", "milk"]] * 2 + [["bread", "butter"]] * 2 + [["milk"]] * 3 \
        + [["bread", "milk"]]
    items = brute_itemsets(baskets, min_support=1)
    full = association_rules(items)
    pruned = association_rules(items, prune_redundant=True)
    _rule(full, ["butter", "milk"], ["bread"])
    _rule(pruned, ["butter"], ["bread"])
    assert not ((pruned["antecedent"].map(tuple) == ("butter", "milk"))
                & (pruned["consequent"].map(tuple) == ("bread",))).any()
    # Every pruned rule has a kept simpler rule with the same consequent and at least its
    # confidence; everything kept is in the full output.
    key = lambda r: (tuple(r["antecedent"]), tuple(r["consequent"]))  # noqa: E731
    kept = {key(r): r for _, r in pruned.iterrows()}
    for _, r in full.iterrows():
        if key(r) in kept:
            continue
        ant = set(r["antecedent"])
        assert any(set(k[0]) < ant and k[1] == key(r)[1] and s["confidence"] >= r["confidence"]
                   for k, s in kept.items())
    assert len(pruned) < len(full)


def test_max_consequent_len_and_sorted_flat_output():
    items = brute_itemsets(random_baskets(1, n_baskets=150), min_support=0.05, max_len=3)
    rules = association_rules(items, max_consequent_len=1)
    assert rules["consequent"].map(len).max() == 1
    assert (rules["antecedent"].map(lambda x: x == sorted(x))).all()
    assert rules["lift"].is_monotonic_decreasing
    for col in ("antecedent", "consequent", "antecedent_names", "consequent_names"):
        assert all(isinstance(v, list) and all(isinstance(s, str) for s in v)
                   for v in rules[col])
    assert len(association_rules(items)) > len(rules)


def test_empty_and_bad_input():
    items = brute_itemsets([["a"], ["b"]], min_support=1)
    empty = association_rules(items)
    assert empty.empty and list(empty.columns) == list(RULE_COLUMNS)
    closed = brute_itemsets(TOY, min_support=1)
    object.__setattr__(closed, "kind", "closed")
    with pytest.raises(InputError) as exc:
        association_rules(closed)
    assert exc.value.key == "error.basket_rules_need_all"
    with pytest.raises(InputError):
        association_rules(items, min_confidence="lots")
    with pytest.raises(InputError):
        association_rules(items, min_lift=float("nan"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_mlxtend(seed):
    mlx = pytest.importorskip("mlxtend.frequent_patterns")
    baskets = random_baskets(seed, n_baskets=300)
    items = brute_itemsets(baskets, min_support=0.03, max_len=4)
    ours = association_rules(items)
    ids = items.item_ids
    frame = pd.DataFrame({
        "support": items.support(),
        "itemsets": [frozenset(str(ids[k]) for k in s) for s in items.items]})
    theirs = mlx.association_rules(frame, num_itemsets=items.n_baskets,
                                   metric="confidence", min_threshold=0.0)
    assert len(ours) == len(theirs) > 100
    theirs = theirs.assign(
        key=[(tuple(sorted(a)), tuple(sorted(c)))
             for a, c in zip(theirs["antecedents"], theirs["consequents"], strict=True)]
    ).set_index("key")
    ours = ours.assign(key=[(tuple(a), tuple(c)) for a, c in
                            zip(ours["antecedent"], ours["consequent"], strict=True)]
                       ).set_index("key").loc[theirs.index]
    for mine, other in (("support", "support"), ("confidence", "confidence"),
                        ("lift", "lift"), ("leverage", "leverage"),
                        ("conviction", "conviction"), ("zhang", "zhangs_metric")):
        np.testing.assert_allclose(ours[mine].to_numpy(float), theirs[other].to_numpy(float),
                                   rtol=1e-9, atol=1e-12, err_msg=mine)
