"""C4.5's pessimistic error pruning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmlens.trees import C45Classifier, upper_error_rate


def test_upper_error_rate_matches_quinlan_for_error_free_leaves():
    # U_CF(0, N) = 1 - CF ** (1/N); Quinlan (1993, p. 41) with CF = 25 %:
    #   U(0, 6) = 1 - 0.25 ** (1/6) = 0.206,  U(0, 9) = 0.143,  U(0, 1) = 0.750
    assert upper_error_rate(0, 6, 0.25) == pytest.approx(0.206, abs=1e-3)
    assert upper_error_rate(0, 9, 0.25) == pytest.approx(0.143, abs=1e-3)
    assert upper_error_rate(0, 1, 0.25) == pytest.approx(0.750, abs=1e-3)
    # the limit grows with the errors and is 1 when every case is an error
    assert upper_error_rate(1, 16, 0.25) > upper_error_rate(0, 16, 0.25)
    assert upper_error_rate(3, 3, 0.25) == 1.0


def _quinlan_node() -> tuple[pd.DataFrame, list[str]]:
    # The subtree of Quinlan's pruning example: three leaves with 6, 9 and 1 cases, no errors;
    # as one leaf it would hold 16 cases with 1 error.
    values = ["a"] * 6 + ["b"] * 9 + ["c"]
    y = ["keep"] * 15 + ["other"]
    return pd.DataFrame({"attribute": values}), y


def test_quinlans_subtree_is_replaced_by_a_leaf():
    X, y = _quinlan_node()
    unpruned = C45Classifier(pruning=False).fit(X, y)
    assert unpruned.get_n_leaves() == 3
    # subtree: 6 * 0.206 + 9 * 0.143 + 1 * 0.750 = 3.273 predicted errors;
    # leaf:    16 * U(1, 16) = 16 * 0.157 = 2.512 (Quinlan's normal approximation; the exact
    #          binomial limit we use is 0.1596, giving 2.554) -> the leaf is better: prune
    pruned = C45Classifier().fit(X, y)
    assert pruned.get_n_leaves() == 1
    assert pruned.n_pruned_ == 1
    assert pruned.predict(X).tolist() == ["keep"] * 16
    # a confidence factor near 1 makes the estimate optimistic and keeps the subtree
    assert C45Classifier(confidence_factor=0.99).fit(X, y).get_n_leaves() == 3


def test_pruning_collapses_a_noisy_subtree_and_keeps_the_signal():
    rng = np.random.default_rng(7)
    n = 1500
    X = rng.uniform(0, 100, size=(n, 4))
    signal = (X[:, 0] > 50).astype(int)
    noisy = np.where(rng.random(n) < 0.15, 1 - signal, signal)
    unpruned = C45Classifier(pruning=False, mdl_correction=False).fit(X, noisy)
    pruned = C45Classifier(mdl_correction=False).fit(X, noisy)
    assert pruned.get_n_leaves() < unpruned.get_n_leaves() / 5
    assert pruned.root_.feature == 0 and pruned.root_.threshold == pytest.approx(50, abs=2)
    fresh = rng.uniform(0, 100, size=(2000, 4))
    truth = (fresh[:, 0] > 50).astype(int)
    assert np.mean(pruned.predict(fresh) == truth) > np.mean(unpruned.predict(fresh) == truth)
    assert np.mean(pruned.predict(fresh) == truth) > 0.95
