"""k-prototypes (Huang 1997, 1998) for mixed numeric and categorical data, vectorized in numpy.

The dissimilarity of a customer x to a prototype c is the squared Euclidean distance over the
numeric features plus ``gamma`` times the number of categorical features on which they differ;
a prototype is the mean of its members' numeric features and the mode of each categorical one.
Unlike the per-point (online) updates of the ``kmodes`` package, every iteration here assigns
all points at once and then recomputes every prototype (batch updates, as Lloyd's k-means),
which is what makes it fast; both decrease the same cost and stop at a local minimum.

Defaults follow ``kmodes.kprototypes.KPrototypes``: ``gamma = 0.5 * mean standard deviation
of the numeric features``; Cao (density) or Huang (frequency) initialisation of the
categorical part, numeric part drawn as ``mean + N(0, 1) * std`` per feature.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["KPrototypes", "init_cao", "init_huang"]

_CHUNK = 65_536  # rows per block of the distance computation


def _mismatches(cat: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """Number of differing categorical attributes, shape (n, k)."""
    out = np.zeros((cat.shape[0], modes.shape[0]))
    for j in range(cat.shape[1]):
        out += cat[:, j, None] != modes[None, :, j]
    return out


def init_huang(cat: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Huang's initial modes: attribute values drawn by frequency, then snapped to data points.

    Parameters
    ----------
    cat : numpy.ndarray of int, shape (n, m)
        Categorical codes.
    n_clusters : int
        Number of modes.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    numpy.ndarray of int, shape (n_clusters, m)
    """
    # Drawing uniformly among the rows' values draws each level by its frequency.
    modes = np.column_stack([cat[rng.integers(0, len(cat), n_clusters), j]
                             for j in range(cat.shape[1])])
    chosen = np.empty_like(modes)
    for i in range(n_clusters):
        order = np.argsort(_mismatches(cat, modes[i:i + 1])[:, 0], kind="stable")
        # The closest data point not already a mode (as kmodes does).
        for r in order:
            if i == 0 or not (chosen[:i] == cat[r]).all(axis=1).any():
                break
        chosen[i] = cat[r]
    return chosen


def init_cao(cat: np.ndarray, n_clusters: int) -> np.ndarray:
    """Cao, Liang & Bai (2009) initial modes: dense points far from the modes chosen so far.

    Parameters
    ----------
    cat : numpy.ndarray of int, shape (n, m)
        Categorical codes.
    n_clusters : int
        Number of modes.

    Returns
    -------
    numpy.ndarray of int, shape (n_clusters, m)
    """
    n, m = cat.shape
    density = np.zeros(n)
    for j in range(m):
        _, inverse, counts = np.unique(cat[:, j], return_inverse=True, return_counts=True)
        density += counts[inverse]
    density /= n * m
    modes = [cat[np.argmax(density)]]
    min_score = np.full(n, np.inf)
    for _ in range(1, n_clusters):
        d = _mismatches(cat, np.asarray(modes[-1:]))[:, 0]
        min_score = np.minimum(min_score, d * density)
        modes.append(cat[np.argmax(min_score)])
    return np.asarray(modes)


class KPrototypes(ClusterMixin, BaseEstimator):
    """k-prototypes clustering of mixed numeric and categorical data.

    Parameters
    ----------
    n_clusters : int, default 8
        Number of clusters.
    categorical : list of int, optional
        Column indices holding categorical codes (non-negative integers); the other columns
        are numeric. Without it every column is numeric (k-prototypes is then k-means).
    gamma : float, optional
        Weight of a categorical mismatch; default 0.5 × the mean standard deviation of the
        numeric columns (as in ``kmodes``).
    init : {"cao", "huang"} or tuple of arrays, default "cao"
        Initialisation of the categorical part, or explicit ``(numeric_centres, modes)``.
    n_init : int, default 4
        Runs with different seeds; the lowest cost wins.
    max_iter : int, default 100
        Iterations per run.
    random_state : int, optional
        Seed.
    """

    def __init__(self, *, n_clusters=8, categorical=None, gamma=None, init="cao", n_init=4,
                 max_iter=100, random_state=None):
        self.n_clusters = n_clusters
        self.categorical = categorical
        self.gamma = gamma
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def _split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cat_idx = list(self.categorical or ())
        num_idx = [j for j in range(X.shape[1]) if j not in set(cat_idx)]
        num = X[:, num_idx].astype(float)
        cat = X[:, cat_idx].astype(np.int64) if cat_idx else np.zeros((len(X), 0), np.int64)
        return num, cat

    def _dissimilarity(self, num, cat, centres, modes) -> np.ndarray:
        d = (np.einsum("ij,ij->i", num, num)[:, None] - 2.0 * num @ centres.T
             + np.einsum("ij,ij->i", centres, centres)[None, :])
        np.maximum(d, 0.0, out=d)
        if cat.shape[1]:
            d += self.gamma_ * _mismatches(cat, modes)
        return d

    def _assign(self, num, cat, centres, modes) -> tuple[np.ndarray, np.ndarray]:
        labels = np.empty(len(num), dtype=np.int64)
        dist = np.empty(len(num))
        for s in range(0, len(num), _CHUNK):
            d = self._dissimilarity(num[s:s + _CHUNK], cat[s:s + _CHUNK], centres, modes)
            labels[s:s + _CHUNK] = d.argmin(axis=1)
            dist[s:s + _CHUNK] = d[np.arange(len(d)), labels[s:s + _CHUNK]]
        return labels, dist

    def _update(self, num, cat, labels, dist, k, centres, modes):
        counts = np.bincount(labels, minlength=k)
        for c in np.flatnonzero(counts == 0):
            # An emptied cluster takes the point farthest from its prototype (as k-means does).
            far = int(np.argmax(dist))
            labels[far], dist[far] = c, 0.0
        counts = np.bincount(labels, minlength=k)
        new_c = np.zeros_like(centres)
        np.add.at(new_c, labels, num)
        new_c /= counts[:, None]
        new_m = modes.copy()
        for j in range(cat.shape[1]):
            n_lv = int(cat[:, j].max()) + 1
            table = np.bincount(labels * n_lv + cat[:, j], minlength=k * n_lv).reshape(k, n_lv)
            new_m[:, j] = table.argmax(axis=1)  # ties: the smallest code
        return new_c, new_m

    def _initial(self, num, cat, rng) -> tuple[np.ndarray, np.ndarray]:
        k = self.n_clusters
        if isinstance(self.init, tuple | list):
            return np.asarray(self.init[0], dtype=float), np.asarray(self.init[1], np.int64)
        if cat.shape[1]:
            modes = init_huang(cat, k, rng) if self.init == "huang" else init_cao(cat, k)
        else:
            modes = np.zeros((k, 0), np.int64)
        centres = num.mean(axis=0) + rng.standard_normal((k, num.shape[1])) * num.std(axis=0)
        return centres, modes

    def _single(self, num, cat, rng):
        centres, modes = self._initial(num, cat, rng)
        labels = None
        for it in range(1, int(self.max_iter) + 1):
            new_labels, dist = self._assign(num, cat, centres, modes)
            if labels is not None and np.array_equal(new_labels, labels):
                break
            labels = new_labels
            centres, modes = self._update(num, cat, labels, dist, self.n_clusters, centres,
                                          modes)
        labels, dist = self._assign(num, cat, centres, modes)
        return labels, centres, modes, float(dist.sum()), it

    def fit(self, X, y=None):
        """Cluster ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric columns and integer-coded categorical columns (``categorical``).
        y : None
            Ignored.

        Returns
        -------
        self : KPrototypes
        """
        X = validate_data(self, X, dtype=float)
        if int(self.n_clusters) < 1 or int(self.n_clusters) > len(X):
            raise ValueError(f"n_clusters={self.n_clusters} must be between 1 and n_samples="
                             f"{len(X)}")
        if self.init not in ("cao", "huang") and not isinstance(self.init, tuple | list):
            raise ValueError(f"init must be 'cao', 'huang' or (centres, modes), got {self.init!r}")
        num, cat = self._split(X)
        if (cat < 0).any():
            raise ValueError("categorical codes must be non-negative integers")
        self.gamma_ = (float(self.gamma) if self.gamma is not None
                       else 0.5 * float(num.std(axis=0).mean()) if num.shape[1] else 1.0)
        rng = np.random.default_rng(self.random_state)
        explicit = isinstance(self.init, tuple | list)
        best = None
        for _ in range(1 if explicit else max(1, int(self.n_init))):
            run = self._single(num, cat, rng)
            if best is None or run[3] < best[3]:
                best = run
        self.labels_, self.cluster_centers_, self.modes_, self.cost_, self.n_iter_ = best
        return self

    def predict(self, X) -> np.ndarray:
        """Nearest prototype of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of int
        """
        check_is_fitted(self, "labels_")
        X = validate_data(self, X, dtype=float, reset=False)
        num, cat = self._split(X)
        return self._assign(num, cat, self.cluster_centers_, self.modes_)[0]
