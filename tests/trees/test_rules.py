"""Rule export: metrics, simplification, agreement with the trees, text and JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from crmlens.trees import (
    C45Classifier,
    CARTClassifier,
    Condition,
    ID3Classifier,
    Rule,
    export_rules,
    export_text,
    format_rule,
    rules_to_json,
    rules_to_text,
    simplify,
)


def test_coverage_and_precision_on_a_crafted_table():
    # channel a: 4 P + 1 N, b: 1 P + 4 N, c: 2 P.  Class totals: P = 7, N = 5.
    X = pd.DataFrame({"channel": list("aaaaabbbbbcc")})
    y = ["P", "P", "P", "P", "N", "P", "N", "N", "N", "N", "P", "P"]
    rules = {r.conditions[0].value: r for r in export_rules(ID3Classifier().fit(X, y))}
    a, b, c = rules["a"], rules["b"], rules["c"]
    assert (a.prediction, a.support, a.precision, a.coverage) == ("P", 5, 4 / 5, 4 / 7)
    assert (b.prediction, b.support, b.precision, b.coverage) == ("N", 5, 4 / 5, 4 / 5)
    assert (c.prediction, c.support, c.precision, c.coverage) == ("P", 2, 1.0, 2 / 7)
    assert a.class_counts == {"N": 1, "P": 4}
    # measured again on the same data: the same figures
    again = a.evaluate(X, y)
    assert (again.support, again.precision, again.coverage) == (5, 0.8, 4 / 7)


def test_simplify_merges_conditions_on_the_same_feature():
    path = [Condition("recency", "<=", 60.0), Condition("orders", ">", 2.0),
            Condition("recency", "<=", 30.0), Condition("orders", ">", 5.0),
            Condition("channel", "in", ("web", "app", "store")),
            Condition("channel", "in", ("web", "app")), Condition("channel", "==", "web")]
    assert simplify(path) == (Condition("recency", "<=", 30.0), Condition("orders", ">", 5.0),
                              Condition("channel", "==", "web"))
    # a condition accepts missing values only if all merged ones did
    merged = simplify([Condition("x", "<=", 5.0, missing=True), Condition("x", "<=", 3.0)])
    assert merged == (Condition("x", "<=", 3.0, missing=False),)


def test_paths_that_test_a_feature_twice_are_simplified():
    X = np.arange(1.0, 9.0).reshape(-1, 1)
    y = [0, 0, 1, 1, 1, 1, 2, 2]
    rules = export_rules(ID3Classifier().fit(X, y))
    assert len(rules) == 3
    for rule in rules:
        directions = [(c.feature, c.operator) for c in rule.conditions]
        assert len(directions) == len(set(directions))
    by_class = {r.prediction: r for r in rules}
    assert [(c.operator, c.value) for c in by_class[0].conditions] == [("<=", 2.5)]


def _random_data(seed: int, missing: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 5))
    y = (X[:, 0] + X[:, 1] ** 2 + rng.normal(scale=0.5, size=600) > 1).astype(int)
    y[X[:, 2] > 1.2] = 2
    if missing:
        X[rng.random(X.shape) < 0.05] = np.nan
    return X, y


@pytest.mark.parametrize("missing", [False, True])
def test_cart_rules_reproduce_the_sklearn_tree(missing):
    X, y = _random_data(3, missing)
    for tree in (CARTClassifier(max_depth=5, random_state=0).fit(X, y),
                 DecisionTreeClassifier(min_samples_leaf=3, random_state=0).fit(X, y)):
        rules = export_rules(tree)
        assert len(rules) == tree.get_n_leaves()
        X_new, _ = _random_data(4, missing)
        masks = np.array([r.matches(X_new) for r in rules])
        assert (masks.sum(axis=0) == 1).all()  # the rules partition the rows
        from_rules = np.array([rules[i].prediction for i in masks.argmax(axis=0)])
        assert (from_rules == tree.predict(X_new)).all()
        assert sum(r.support for r in rules) == len(X)


def test_our_tree_rules_reproduce_predict_on_complete_data():
    X, y = _random_data(5, missing=False)
    frame = pd.DataFrame(X, columns=list("abcde"))
    frame["tier"] = np.where(X[:, 3] > 0, "gold", "silver")
    for tree in (ID3Classifier(max_depth=4).fit(frame, y), C45Classifier().fit(frame, y)):
        rules = export_rules(tree)
        masks = np.array([r.matches(frame) for r in rules])
        assert (masks.sum(axis=0) == 1).all()
        from_rules = np.array([rules[i].prediction for i in masks.argmax(axis=0)])
        assert (from_rules == tree.predict(frame)).all()


def test_text_in_english_and_chinese():
    rule = Rule(conditions=(Condition("recency_days", "<=", 30.5, integer=True),
                            Condition("orders", ">", 5.5, integer=True)),
                prediction=3, support=120, coverage=0.81, precision=0.94)
    labels = {"recency_days": ("recency", "days"), "orders": "orders"}
    names = {3: {"en": "Segment 3", "zh": "细分 3"}}
    assert format_rule(rule, labels=labels, class_labels=names) == \
        "recency ≤ 30 days and orders ≥ 6 → Segment 3, covers 81 %, precision 94 %"
    zh_labels = {"recency_days": ({"en": "recency", "zh": "最近购买"}, "days"),
                 "orders": {"label": {"en": "orders", "zh": "订单数"}}}
    assert format_rule(rule, lang="zh", labels=zh_labels, class_labels=names) == \
        "最近购买 ≤ 30 天 且 订单数 ≥ 6 → 细分 3，覆盖 81%，精确率 94%"


def test_numbers_money_ranges_categories_and_missing():
    rule = Rule(conditions=(Condition("monetary", ">", 1234.5678),
                            Condition("aov", ">", 0.123456), Condition("aov", "<=", 12.3456),
                            Condition("channel", "in", ("web", "app"), missing=True)),
                prediction="VIP", support=10, coverage=0.5, precision=1.0)
    text = rules_to_text([rule], labels={"monetary": ("spend", "currency"),
                                         "aov": ("AOV", "GBP")})
    assert text == ("spend > 1,234.57 and 0.12 < AOV ≤ 12.35 GBP and "
                    "channel is one of web, app (or missing) → VIP, covers 50 %, precision 100 %")
    plain = rules_to_text([Rule((Condition("share", "<=", 0.33333),), "x", 1, 1.0, 1.0)])
    assert plain.startswith("share ≤ 0.333 →")


def test_json_and_whole_tree_text(tennis):
    X, y = tennis
    tree = ID3Classifier().fit(X, y)
    data = json.loads(rules_to_json(export_rules(tree)))
    assert len(data) == 5
    overcast = next(r for r in data if r["conditions"][0]["value"] == "overcast")
    assert overcast == {"conditions": [{"feature": "outlook", "operator": "==",
                                        "value": "overcast", "missing": False}],
                        "prediction": "yes", "support": 4, "coverage": 4 / 9,
                        "precision": 1.0, "class_counts": {"yes": 4}}
    text = export_text(tree)
    assert text.splitlines()[0] == "|--- outlook == overcast: yes (n=4, 100 %)"
    assert "|   |--- humidity == high: no (n=3, 100 %)" in text.splitlines()


def test_export_rejects_other_models_and_unfitted_trees():
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError):
        export_rules(LogisticRegression())
    with pytest.raises(NotFittedError):
        export_rules(C45Classifier())
