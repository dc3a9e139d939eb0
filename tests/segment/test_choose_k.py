"""choose_k: the table, the rule, the chart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

from crmlens.segment.choose_k import (
    KChoice,
    _apply_rule,
    choose_k,
    k_choice_figure,
    stratified_sample,
)


@pytest.mark.parametrize("planted", [3, 5])
def test_finds_planted_k_on_separated_blobs(planted):
    X, _ = make_blobs(4_000, n_features=5, centers=planted, cluster_std=0.7, random_state=planted)
    choice = choose_k(X, k_range=(2, 8), random_state=0, silhouette_size=1_000,
                      stability_size=2_000)
    assert choice.k == planted
    table = choice.table
    assert list(table["k"]) == list(range(2, 9))
    for col in ("silhouette", "calinski_harabasz", "davies_bouldin", "stability"):
        assert table[col].notna().all(), col
    assert table["bic"].isna().all()  # k-means has no likelihood
    assert table.loc[table["k"] == planted, "stability"].iloc[0] >= 0.8
    assert choice.reason_key == "segment.cluster.k_reason.stable_best_silhouette"
    assert f"k = {planted}" in choice.reason("en") and f"k = {planted}" in choice.reason("zh")


def test_bic_filled_for_mixtures():
    X, _ = make_blobs(1_500, n_features=3, centers=3, random_state=0)
    choice = choose_k(X, k_range=(2, 5), random_state=0, n_bootstrap=2,
                      fit=lambda Z, k, s: GaussianMixture(k, random_state=s).fit(Z))
    assert choice.table["bic"].notna().all()
    assert choice.k == 3
    assert choice.table["bic"].idxmin() == choice.table.index[choice.table["k"] == 3][0]


def test_rule_ties_go_to_smaller_k_and_unstable_fallback():
    table = pd.DataFrame({"k": [2, 3, 4, 5], "silhouette": [0.50, 0.700, 0.705, 0.9],
                          "stability": [0.95, 0.9, 0.85, 0.5]})
    k, key, params = _apply_rule(table, 0.8, 0.01)
    assert k == 3  # 5 is unstable; 3 and 4 tie within 0.01, 3 is more stable
    table["stability"] = [0.95, 0.85, 0.99, 0.5]
    assert _apply_rule(table, 0.8, 0.01)[0] == 4  # the tie goes to the more stable k
    table["stability"] = [0.95, 0.985, 0.99, 0.5]
    assert _apply_rule(table, 0.8, 0.01)[0] == 3  # stabilities tie too: the smaller k
    table["stability"] = [0.3, 0.6, 0.4, 0.5]
    k, key, params = _apply_rule(table, 0.8, 0.01)
    assert (k, key) == (3, "segment.cluster.k_reason.none_stable")


def test_stratified_sample_keeps_proportions_and_small_groups():
    labels = np.repeat([0, 1, 2], [9_000, 990, 10])
    rows = stratified_sample(labels, 1_000, np.random.default_rng(0))
    counts = np.bincount(labels[rows])
    assert abs(counts[0] - 900) <= 1 and abs(counts[1] - 99) <= 1 and counts[2] >= 2
    assert len(np.unique(rows)) == len(rows)


def test_scan_sample_is_bounded():
    X, _ = make_blobs(3_000, n_features=2, centers=3, random_state=0)
    choice = choose_k(X, k_range=(2, 4), scan_size=1_000, stability_size=500,
                      random_state=0)
    assert choice.settings["scan_size"] == 1_000
    assert choice.settings["stability_size"] == 500
    assert all(len(m.labels_) == 1_000 for m in choice.models.values())


def test_figure_marks_chosen_k():
    X, _ = make_blobs(1_000, n_features=2, centers=3, random_state=0)
    choice = choose_k(X, k_range=(2, 5), random_state=0, n_bootstrap=1)
    fig = k_choice_figure(choice, lang="zh")
    assert isinstance(fig, go.Figure)
    stars = [tr for tr in fig.data if tr.marker.symbol == "star"]
    assert len(stars) == 4 and all(list(s.x) == [choice.k] for s in stars)  # 4 metrics, no BIC
    assert "类别数" in fig.layout.title.text


def test_bad_range():
    with pytest.raises(ValueError):
        choose_k(np.zeros((10, 2)), k_range=(1, 3))
    assert isinstance(choose_k(np.random.default_rng(0).normal(size=(30, 2)), k_range=(2, 3),
                               n_bootstrap=1), KChoice)
