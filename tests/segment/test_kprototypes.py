"""k-prototypes against the kmodes package (test-only oracle) and on planted mixed data."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from crmlens.segment.kprototypes import KPrototypes, init_cao, init_huang

kmodes_kp = pytest.importorskip("kmodes.kprototypes")

log = logging.getLogger(__name__)


def planted_mixed(n: int, k: int = 4, seed: int = 0, spread: float = 0.6):
    """k groups: Gaussian numerics around distinct centres, each with a dominant level of
    two categorical attributes (80 % of rows), the rest random."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    centres = rng.uniform(-3, 3, (k, 3))
    num = centres[truth] + rng.normal(0, spread, (n, 3))
    cats = []
    for _ in range(2):
        dominant = rng.permutation(6)[:k]
        noise = rng.integers(0, 6, n)
        cats.append(np.where(rng.random(n) < 0.8, dominant[truth], noise))
    return np.column_stack([num] + cats).astype(float), truth


def _start(X, k, seed):
    """An explicit shared start: Cao modes, numeric centres from random rows."""
    rng = np.random.default_rng(seed)
    modes = init_cao(X[:, 3:].astype(np.int64), k)
    centres = X[rng.choice(len(X), k, replace=False), :3]
    return centres, modes


def test_same_start_same_solution_as_kmodes():
    X, truth = planted_mixed(2_000, seed=1)
    centres, modes = _start(X, 4, 0)
    ours = KPrototypes(n_clusters=4, categorical=[3, 4], init=(centres, modes)).fit(X)
    theirs = kmodes_kp.KPrototypes(n_clusters=4, init=[centres, modes], n_init=1,
                                   random_state=0).fit(X, categorical=[3, 4])
    assert ours.gamma_ == pytest.approx(theirs.gamma)
    assert adjusted_rand_score(ours.labels_, theirs.labels_) > 0.98
    assert ours.cost_ == pytest.approx(theirs.cost_, rel=0.01)


def test_cost_close_to_kmodes_on_unstructured_data():
    # No planted structure: local minima differ, but batch and online updates end at
    # solutions of about the same cost.
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(size=(1_500, 2)), rng.integers(0, 4, (1_500, 2))])
    ours = KPrototypes(n_clusters=3, categorical=[2, 3], n_init=5, random_state=0).fit(X)
    theirs = kmodes_kp.KPrototypes(n_clusters=3, n_init=5, random_state=0).fit(
        X, categorical=[2, 3])
    assert ours.cost_ <= theirs.cost_ * 1.05


@pytest.mark.parametrize("init", ["cao", "huang"])
def test_recovers_planted_groups(init):
    X, truth = planted_mixed(3_000, seed=2)
    ours = KPrototypes(n_clusters=4, categorical=[3, 4], init=init, random_state=0).fit(X)
    theirs = kmodes_kp.KPrototypes(n_clusters=4, init=init.capitalize(), n_init=4,
                                   random_state=0).fit(X, categorical=[3, 4])
    assert adjusted_rand_score(truth, ours.labels_) >= 0.9
    assert adjusted_rand_score(truth, theirs.labels_) >= 0.9
    assert np.array_equal(ours.predict(X), ours.labels_)


def test_cost_is_the_kprototypes_objective():
    X, _ = planted_mixed(500, seed=4)
    m = KPrototypes(n_clusters=3, categorical=[3, 4], random_state=0).fit(X)
    num, cat = X[:, :3], X[:, 3:].astype(int)
    cost = sum(((num[i] - m.cluster_centers_[m.labels_[i]]) ** 2).sum()
               + m.gamma_ * (cat[i] != m.modes_[m.labels_[i]]).sum() for i in range(len(X)))
    assert m.cost_ == pytest.approx(cost)
    assert m.gamma_ == pytest.approx(0.5 * num.std(axis=0).mean())


def test_initialisations_pick_data_rows():
    rng = np.random.default_rng(0)
    cat = rng.integers(0, 3, (200, 3))
    rows = {tuple(r) for r in cat}
    for modes in (init_cao(cat, 4), init_huang(cat, 4, rng)):
        assert modes.shape == (4, 3)
        assert all(tuple(m) in rows for m in modes)
        assert len({tuple(m) for m in modes}) == 4  # distinct


def test_numeric_only_is_kmeans_like_and_rejects_bad_input():
    X, truth = planted_mixed(600, seed=5)
    m = KPrototypes(n_clusters=4, random_state=0).fit(X[:, :3])
    assert m.modes_.shape == (4, 0)
    with pytest.raises(ValueError):
        KPrototypes(n_clusters=4, categorical=[0]).fit(-np.ones((10, 2)))
    with pytest.raises(ValueError):
        KPrototypes(n_clusters=50).fit(X[:10])


@pytest.mark.slow
def test_speed_ratio_vs_kmodes_20k():
    """Records (does not assert) the speed ratio on 20,000 rows with the same start."""
    X, truth = planted_mixed(20_000, seed=6)
    centres, modes = _start(X, 4, 0)
    t0 = time.perf_counter()
    ours = KPrototypes(n_clusters=4, categorical=[3, 4], init=(centres, modes)).fit(X)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = kmodes_kp.KPrototypes(n_clusters=4, init=[centres, modes], n_init=1,
                                   random_state=0).fit(X, categorical=[3, 4])
    t_theirs = time.perf_counter() - t0
    log.warning("k-prototypes 20k rows: ours %.3f s, kmodes %.3f s, ratio %.0fx",
                t_ours, t_theirs, t_theirs / t_ours)
    assert adjusted_rand_score(ours.labels_, theirs.labels_) > 0.98
