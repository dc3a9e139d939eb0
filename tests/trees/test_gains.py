"""ID3 and C4.5 reproduce gains computed by hand (log2 throughout)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmlens.trees import C45Classifier, ID3Classifier, entropy, export_rules

OUTLOOK, TEMPERATURE, HUMIDITY, WIND = range(4)


def test_entropy_of_the_tennis_table():
    # 9 yes, 5 no: -(9/14) log2(9/14) - (5/14) log2(5/14) = 0.4098 + 0.5305 = 0.9403
    assert float(entropy([9, 5])) == pytest.approx(0.9403, abs=1e-4)


def test_id3_root_is_outlook_with_hand_computed_gains(tennis):
    X, y = tennis
    tree = ID3Classifier().fit(X, y)
    root = tree.root_
    assert tree.feature_names_in_[root.feature] == "outlook"
    # Outlook: sunny 2+/3-, overcast 4+/0-, rain 3+/2-.
    #   H(sunny) = H(rain) = -(2/5)log2(2/5) - (3/5)log2(3/5) = 0.9710, H(overcast) = 0
    #   E = 5/14 * 0.9710 + 4/14 * 0 + 5/14 * 0.9710 = 0.6935
    #   gain = 0.9403 - 0.6935 = 0.2467
    assert root.gain == pytest.approx(0.2467, abs=1e-4)
    # Humidity: high 3+/4- (H = 0.9852), normal 6+/1- (H = 0.5917)
    #   gain = 0.9403 - (7/14 * 0.9852 + 7/14 * 0.5917) = 0.1518
    assert root.scores[HUMIDITY][0] == pytest.approx(0.1518, abs=1e-4)
    # Wind: weak 6+/2- (H = 0.8113), strong 3+/3- (H = 1)
    #   gain = 0.9403 - (8/14 * 0.8113 + 6/14 * 1) = 0.0481
    assert root.scores[WIND][0] == pytest.approx(0.0481, abs=1e-4)
    # Temperature: hot 2+/2- (1), mild 4+/2- (0.9183), cool 3+/1- (0.8113)
    #   gain = 0.9403 - (4/14 * 1 + 6/14 * 0.9183 + 4/14 * 0.8113) = 0.0292
    assert root.scores[TEMPERATURE][0] == pytest.approx(0.0292, abs=1e-4)


def test_id3_learns_the_textbook_tree(tennis):
    X, y = tennis
    tree = ID3Classifier().fit(X, y)
    assert (tree.predict(X) == np.array(y)).all()
    paths = {tuple((c.feature, c.value) for c in r.conditions): r.prediction
             for r in export_rules(tree)}
    assert paths == {
        (("outlook", "overcast"),): "yes",
        (("outlook", "sunny"), ("humidity", "high")): "no",
        (("outlook", "sunny"), ("humidity", "normal")): "yes",
        (("outlook", "rain"), ("wind", "strong")): "no",
        (("outlook", "rain"), ("wind", "weak")): "yes",
    }


def test_c45_gain_ratio_of_outlook(tennis):
    X, y = tennis
    tree = C45Classifier(min_samples_leaf=1, pruning=False).fit(X, y)
    # split info(Outlook) = -2 * (5/14) log2(5/14) - (4/14) log2(4/14)
    #                     = 2 * 0.5305 + 0.5164 = 1.5774
    # gain ratio = 0.2467 / 1.5774 = 0.1564
    assert tree.feature_names_in_[tree.root_.feature] == "outlook"
    assert tree.root_.gain_ratio == pytest.approx(0.156, abs=1e-3)
    # Humidity splits 7/7: split info = 1, gain ratio = gain = 0.1518
    assert tree.root_.scores[HUMIDITY][1] == pytest.approx(0.1518, abs=1e-4)
    # Wind splits 8/6: split info = 0.9852, ratio = 0.0481 / 0.9852 = 0.0488
    assert tree.root_.scores[WIND][1] == pytest.approx(0.0488, abs=1e-4)


def test_c45_with_an_unknown_outlook_follows_quinlan(tennis):
    # Quinlan (1993), section 3.1: one case's outlook unknown (day 12, overcast, "yes").
    X, y = tennis
    X = X.copy()
    X.loc[11, "outlook"] = None
    tree = C45Classifier(min_samples_leaf=1, pruning=False).fit(X, y)
    gain, ratio = tree.root_.scores[OUTLOOK]
    # Known: 13 cases, 8+/5-, H = 0.9612. sunny 2+/3-, overcast 3+/0-, rain 3+/2-:
    #   E = 5/13 * 0.9710 + 3/13 * 0 + 5/13 * 0.9710 = 0.7469
    #   gain = 13/14 * (0.9612 - 0.7469) = 0.1990   (Quinlan: 0.199)
    assert gain == pytest.approx(0.1990, abs=1e-3)
    # split info over sunny, overcast, rain and "unknown" (5, 3, 5, 1 of 14):
    #   2 * (5/14) log2(14/5) + (3/14) log2(14/3) + (1/14) log2(14) = 1.8092 (Quinlan: 1.809)
    #   ratio = 0.1990 / 1.8092 = 0.110
    assert ratio == pytest.approx(0.110, abs=1e-3)
    # a case with unknown outlook is spread over the branches: a proper mixed distribution
    proba = tree.predict_proba(X.iloc[[11]])
    assert proba.sum() == pytest.approx(1.0)
    assert 0 < proba[0, 1] < 1


def test_numeric_threshold_on_a_tiny_table():
    X = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])
    y = ["a", "a", "a", "b", "b", "a"]
    # H(S) = H(4/6, 2/6) = 0.9183. Candidate midpoints:
    #   1.5: {a} | {a,a,b,b,a}   E = 5/6 * 0.9710 = 0.8091   gain 0.1092
    #   2.5: {a,a} | {a,b,b,a}   E = 4/6 * 1      = 0.6667   gain 0.2516
    #   3.5: {a,a,a} | {b,b,a}   E = 3/6 * 0.9183 = 0.4591   gain 0.4591  <- best
    #   4.5: {a,a,a,b} | {b,a}   E = 4/6 * 0.8113 + 2/6 * 1 = 0.8742   gain 0.0441
    #   5.5: {a,a,a,b,b} | {a}   E = 5/6 * 0.9710 = 0.8091   gain 0.1092
    tree = ID3Classifier(max_depth=1).fit(X, y)
    assert tree.root_.threshold == 3.5
    assert tree.root_.gain == pytest.approx(0.4591, abs=1e-4)
    # C4.5 without the MDL correction picks the same threshold
    c45 = C45Classifier(max_depth=1, min_samples_leaf=1, pruning=False,
                        mdl_correction=False).fit(X, y)
    assert c45.root_.threshold == 3.5
    # with it, the gain drops by log2(5 candidates) / 6 cases = 2.3219 / 6 = 0.3870
    corrected = C45Classifier(max_depth=1, min_samples_leaf=1, pruning=False).fit(X, y)
    assert corrected.root_.gain == pytest.approx(0.4591 - 0.3870, abs=1e-4)


def test_thresholds_fall_between_distinct_values_only():
    X = np.array([[1.0], [1.0], [2.0], [2.0], [2.0], [3.0]])
    tree = ID3Classifier().fit(X, [0, 0, 1, 1, 1, 1])
    assert tree.root_.threshold == 1.5
    assert tree.root_.gain == pytest.approx(float(entropy([2, 4])))  # a perfect split


def test_min_samples_leaf_and_max_depth_are_respected():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=400) > 0).astype(int)
    for learner in (ID3Classifier, C45Classifier):
        tree = learner(min_samples_leaf=20, max_depth=3).fit(X, y)
        assert tree.get_depth() <= 3
        leaves = [n for n in tree.root_.walk() if n.is_leaf]
        assert min(leaf.n for leaf in leaves) >= 20


def test_dataframe_mixing_categorical_and_numeric_columns():
    X = pd.DataFrame({"channel": ["web", "store", "web", "app", "store", "app"] * 5,
                      "orders": [1, 8, 2, 9, 7, 1] * 5})
    y = np.where(X["orders"] > 5, "loyal", "casual")
    for learner in (ID3Classifier, C45Classifier):
        tree = learner(min_samples_leaf=1).fit(X, y)
        assert tree.feature_names_in_[tree.root_.feature] == "orders"
        assert tree.root_.threshold == 4.5
        assert (tree.predict(X) == y).all()
        # an unseen category does not break prediction
        unseen = pd.DataFrame({"channel": ["phone"], "orders": [9]})
        assert tree.predict(unseen).tolist() == ["loyal"]
