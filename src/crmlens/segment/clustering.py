"""One scikit-learn style estimator over many clustering algorithms: :class:`Segmenter`.

Preprocessing is :class:`~crmlens.segment.preprocess.CustomerPreprocessor` (its choices are in
``preprocessor_.describe()``); the number of clusters is fixed or chosen by
:func:`~crmlens.segment.choose_k.choose_k` (``n_clusters="auto"``).

Sampling policy. Agglomerative, spectral, DBSCAN and HDBSCAN need time or memory quadratic in
the number of rows (or close to it); on more than ``sample_size`` rows they are fitted on a
uniform random sample of ``sample_size`` rows and every other customer is assigned: to the
nearest cluster centroid (agglomerative, spectral), to the cluster of the nearest core sample
if it lies within ``eps`` and otherwise to noise (DBSCAN, which is exactly DBSCAN's own rule for
border points), or to the group of the nearest fitted customer (HDBSCAN). ``sampled_`` and
``fit_notes_`` record it, so outputs can say so. Noise (label -1 of DBSCAN and HDBSCAN) stays a
group of its own, named through the catalogue, and is never merged into a cluster.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import (
    DBSCAN,
    HDBSCAN,
    AgglomerativeClustering,
    Birch,
    KMeans,
    MiniBatchKMeans,
    SpectralClustering,
)
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from crmlens.i18n import t
from crmlens.segment.choose_k import KChoice, choose_k, small_data_threads
from crmlens.segment.kprototypes import KPrototypes
from crmlens.segment.preprocess import CustomerPreprocessor

__all__ = ["DENSITY_METHODS", "METHODS", "NOISE", "QUADRATIC_METHODS", "Segmenter"]

log = logging.getLogger(__name__)

METHODS = ("kmeans", "minibatch_kmeans", "gmm", "dbscan", "hdbscan", "agglomerative",
           "spectral", "birch", "kprototypes")
QUADRATIC_METHODS = frozenset({"agglomerative", "spectral", "dbscan", "hdbscan"})
DENSITY_METHODS = frozenset({"dbscan", "hdbscan"})
NOISE = -1
_RESTARTED = frozenset({"kmeans", "minibatch_kmeans", "kprototypes"})
_SPECTRAL_NEIGHBOURS = 15  # a connected k-nearest-neighbour graph on customer samples
_EPS_QUANTILE = 0.9  # automatic DBSCAN eps: this quantile of the k-th neighbour distance
_CHUNK = 65_536
_METHOD_NAMES = {"kmeans": "k-means", "minibatch_kmeans": "mini-batch k-means",
                 "gmm": "Gaussian mixture", "dbscan": "DBSCAN", "hdbscan": "HDBSCAN",
                 "agglomerative": "agglomerative clustering", "spectral": "spectral clustering",
                 "birch": "BIRCH", "kprototypes": "k-prototypes"}


def _nearest(X: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and distance to the nearest of ``points`` for each row, in blocks."""
    idx = np.empty(len(X), dtype=np.int64)
    dist = np.empty(len(X))
    pp = np.einsum("ij,ij->i", points, points)
    for s in range(0, len(X), _CHUNK):
        b = X[s:s + _CHUNK]
        d = np.einsum("ij,ij->i", b, b)[:, None] - 2.0 * b @ points.T + pp[None, :]
        idx[s:s + _CHUNK] = d.argmin(axis=1)
        dist[s:s + _CHUNK] = np.sqrt(np.maximum(d[np.arange(len(b)), idx[s:s + _CHUNK]], 0.0))
    return idx, dist


def _checked(X):
    """DataFrames pass as they are (mixed types); anything else must be a numeric 2D array."""
    if isinstance(X, pd.DataFrame):
        return X
    return check_array(X, dtype="numeric", ensure_all_finite="allow-nan")


class _CentroidModel:
    """A fitted labelling that predicts by nearest centroid (agglomerative, spectral, BIRCH)."""

    def __init__(self, X: np.ndarray, labels: np.ndarray):
        ks = np.unique(labels[labels != NOISE])
        self.labels_ = labels
        self.cluster_centers_ = np.vstack([X[labels == k].mean(axis=0) for k in ks])
        self.ids_ = ks

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.ids_[_nearest(X, self.cluster_centers_)[0]]


class Segmenter(ClusterMixin, BaseEstimator):
    """Cluster customers with one of many algorithms, behind one estimator interface.

    Parameters
    ----------
    method : {"kmeans", "minibatch_kmeans", "gmm", "dbscan", "hdbscan", "agglomerative", \
"spectral", "birch", "kprototypes"}, default "kmeans"
        Algorithm. k-means, mini-batch k-means, the Gaussian mixture, DBSCAN, HDBSCAN,
        agglomerative, spectral and BIRCH are scikit-learn's; k-prototypes is
        :class:`~crmlens.segment.kprototypes.KPrototypes`.
    n_clusters : int or "auto", default "auto"
        Number of clusters, or ``"auto"`` to choose it in ``k_range`` (see
        :func:`~crmlens.segment.choose_k.choose_k`). DBSCAN and HDBSCAN ignore it.
    k_range : (int, int), default (2, 12)
        Range of k searched by ``"auto"``.
    linkage : {"ward", "average", "complete", "single"}, default "ward"
        Linkage of agglomerative clustering.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Covariance of the Gaussian mixture components.
    reg_covar : float, default 0.01
        Added to the diagonal of the mixture covariances. Features are standardized, so this
        is a variance floor of 1 % of each feature's spread; scikit-learn's 1e-6 (for any
        units) let components collapse onto near-singular directions (shares summing to one,
        few-valued counts): ARI 0.86 instead of 0.99 on the generator's separated segments.
    eps : float, optional
        DBSCAN neighbourhood radius; default: the 90 % quantile of the distance to the
        ``min_samples``-th nearest neighbour.
    min_samples : int, optional
        DBSCAN/HDBSCAN density parameter; default ``2 × features``, within [5, 50].
    min_cluster_size : int, optional
        HDBSCAN smallest cluster; default 1 % of the fitted rows, at least 5.
    n_init : int, optional
        Restarts (k-means 4, mini-batch k-means 3, mixture 1, k-prototypes 4 by default; a
        final fit warm-started from the automatic choice uses 1).
    sample_size : int, default 10_000
        Quadratic methods are fitted on a random sample of this many rows when there are more
        (the rest are assigned, see the module notes).
    scan_size : int, default 100_000
        Rows of the sample each k is evaluated on by ``"auto"``.
    n_bootstrap : int, default 3
        Resampled fits per k for the stability of ``"auto"``.
    stability_threshold : float, default 0.8
        Stability (mean bootstrap ARI) a k needs to be chosen by ``"auto"``.
    preprocessor : CustomerPreprocessor, "passthrough" or None, default None
        Preprocessing (cloned); None means ``CustomerPreprocessor()``; "passthrough" uses
        numeric input as it is.
    random_state : int, optional
        Seed of samples, restarts and resamples.
    """

    def __init__(self, *, method="kmeans", n_clusters="auto", k_range=(2, 12), linkage="ward",
                 covariance_type="full", reg_covar=0.01, eps=None, min_samples=None,
                 min_cluster_size=None,
                 n_init=None, sample_size=10_000, scan_size=100_000, n_bootstrap=3,
                 stability_threshold=0.8, preprocessor=None, random_state=None):
        self.method = method
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.linkage = linkage
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.eps = eps
        self.min_samples = min_samples
        self.min_cluster_size = min_cluster_size
        self.n_init = n_init
        self.sample_size = sample_size
        self.scan_size = scan_size
        self.n_bootstrap = n_bootstrap
        self.stability_threshold = stability_threshold
        self.preprocessor = preprocessor
        self.random_state = random_state

    # --- validation and preprocessing -------------------------------------------------------

    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not (self.n_clusters == "auto" or (isinstance(self.n_clusters, int | np.integer)
                                              and self.n_clusters >= 1)):
            raise ValueError(f"n_clusters must be a positive int or 'auto', got "
                             f"{self.n_clusters!r}")
        if self.linkage not in ("ward", "average", "complete", "single"):
            raise ValueError(f"linkage must be ward/average/complete/single, got {self.linkage!r}")
        if self.covariance_type not in ("full", "tied", "diag", "spherical"):
            raise ValueError(f"unknown covariance_type {self.covariance_type!r}")
        if int(self.sample_size) < 10:
            raise ValueError("sample_size must be at least 10")

    def _make_preprocessor(self):
        if isinstance(self.preprocessor, str) and self.preprocessor == "passthrough":
            return None
        prep = (clone(self.preprocessor) if self.preprocessor is not None
                else CustomerPreprocessor(random_state=self.random_state))
        if self.method == "kprototypes":
            prep.set_params(categorical_encoding="codes", pca=None)
        return prep

    def _to_model_space(self, X, *, fit: bool) -> np.ndarray:
        if self.preprocessor_ is None:
            return check_array(X, dtype=float)
        return self.preprocessor_.fit_transform(X) if fit else self.preprocessor_.transform(X)

    # --- model factories --------------------------------------------------------------------

    def _estimator(self, k: int, seed: int, n_init: int | None = None):
        m = self.method
        if m == "kmeans":
            return KMeans(n_clusters=k, n_init=n_init or self.n_init or 4, random_state=seed)
        if m == "minibatch_kmeans":
            return MiniBatchKMeans(n_clusters=k, n_init=n_init or self.n_init or 3,
                                   random_state=seed, batch_size=4096)
        if m == "gmm":
            return GaussianMixture(n_components=k, covariance_type=self.covariance_type,
                                   reg_covar=self.reg_covar,
                                   n_init=n_init or self.n_init or 1, random_state=seed)
        if m == "birch":
            return Birch(n_clusters=None)
        if m == "kprototypes":
            return KPrototypes(n_clusters=k, categorical=self.preprocessor_categorical_,
                               n_init=n_init or self.n_init or 4, random_state=seed)
        if m == "agglomerative":
            return AgglomerativeClustering(n_clusters=k, linkage=self.linkage)
        return SpectralClustering(n_clusters=k, affinity="nearest_neighbors",
                                  random_state=seed, n_neighbors=_SPECTRAL_NEIGHBOURS)

    def _fit_k(self, Z: np.ndarray, k: int, seed: int, n_init: int | None = None):
        """A fitted model with ``predict`` for a method that takes k."""
        est = self._estimator(k, seed, n_init)
        if self.method == "spectral":
            est.set_params(n_neighbors=max(2, min(_SPECTRAL_NEIGHBOURS, len(Z) - 1)))
        if self.method in ("agglomerative", "spectral"):
            return _CentroidModel(Z, est.fit_predict(Z))
        if self.method == "birch":
            # Global step: k-means on the CF subclusters weighted by their sizes; scikit-learn's
            # default (unweighted agglomerative) merged clearly separate groups in our tests.
            sub = est.fit(Z).labels_
            weights = np.bincount(sub, minlength=len(est.subcluster_centers_))
            k = min(k, len(est.subcluster_centers_))
            glob = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(
                est.subcluster_centers_, sample_weight=weights)
            return _CentroidModel(Z, glob.labels_[sub])
        return est.fit(Z)

    def _embed(self, Z: np.ndarray) -> np.ndarray:
        """k-prototypes space as Euclidean: one-hot categoricals × sqrt(gamma / 2)."""
        cat = self.preprocessor_categorical_
        num = np.delete(Z, cat, axis=1)
        gamma = 0.5 * float(num.std(axis=0).mean()) if num.shape[1] else 1.0
        blocks = [num]
        for j in cat:
            codes = Z[:, j].astype(np.int64)
            blocks.append(np.eye(int(codes.max()) + 1)[codes] * np.sqrt(gamma / 2.0))
        return np.hstack(blocks)

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Preprocess ``X``, choose k if asked, cluster, and label every row.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_features)
            Customer features, one row per customer.
        y : None
            Ignored.

        Returns
        -------
        self : Segmenter
        """
        self._check_params()
        X = _checked(X)
        validate_data(self, X, skip_check_array=True, reset=True)
        self.preprocessor_ = self._make_preprocessor()
        Z = self._to_model_space(X, fit=True)
        self.preprocessor_categorical_ = (self.preprocessor_.categorical_indices_
                                          if self.preprocessor_ is not None else [])
        rng = np.random.default_rng(self.random_state)
        n = len(Z)
        self.fit_notes_: list[tuple[str, dict]] = []
        self.k_choice_: KChoice | None = None
        self.sampled_ = self.method in QUADRATIC_METHODS and n > int(self.sample_size)
        fit_rows = (np.sort(rng.choice(n, int(self.sample_size), replace=False))
                    if self.sampled_ else np.arange(n))
        Zfit = Z[fit_rows]
        self.n_fit_rows_ = len(fit_rows)
        name = _METHOD_NAMES[self.method]

        if self.method in DENSITY_METHODS:
            if self.n_clusters != "auto":
                self.fit_notes_.append(("segment.cluster.note.k_fixed", {"method": name}))
            with small_data_threads(len(Zfit)):
                labels_fit = self._fit_density(Zfit)
        else:
            if self.n_clusters == "auto":
                # Few restarts per k in the scan; the final fit is warm-started or restarted.
                scan_init = self.n_init or (2 if self.method in _RESTARTED else None)
                self.k_choice_ = choose_k(
                    Zfit, fit=lambda Z, k, seed: self._fit_k(Z, k, seed, scan_init),
                    k_range=self.k_range,
                    random_state=int(rng.integers(2**31 - 1)),
                    scan_size=min(int(self.scan_size), len(Zfit)),
                    n_bootstrap=self.n_bootstrap, stability_threshold=self.stability_threshold,
                    embed=self._embed if self.method == "kprototypes" else None)
                k = self.k_choice_.k
                self.fit_notes_.append(("segment.cluster.note.k_auto", {"k": k}))
            else:
                k = int(self.n_clusters)
            if k > len(Zfit):
                raise ValueError(f"n_clusters={k} must be <= n_samples={len(Zfit)}.")
            with small_data_threads(len(Zfit)):
                self.model_ = self._final_fit(Zfit, k, int(rng.integers(2**31 - 1)))
            labels_fit = np.asarray(self.model_.predict(Zfit))

        labels = np.empty(n, dtype=np.int64)
        labels[fit_rows] = labels_fit
        if self.sampled_:
            rest = np.setdiff1d(np.arange(n), fit_rows, assume_unique=True)
            labels[rest] = self._assign(Z[rest])
            self.fit_notes_.append(("segment.cluster.note.sampled", {
                "method": name, "n_fit": len(fit_rows), "n_total": n, "n_rest": len(rest),
                "assignment_key": self._assignment_key()}))
        self.labels_ = labels
        ks = np.unique(labels[labels != NOISE])
        self.n_clusters_ = len(ks)
        n_noise = int((labels == NOISE).sum())
        if self.method in DENSITY_METHODS:
            self.fit_notes_.append(("segment.cluster.note.noise", {
                "n_noise": n_noise, "share": f"{n_noise / n:.1%}"}))
        self.cluster_centers_ = (np.vstack([Z[labels == k].mean(axis=0) for k in ks])
                                 if len(ks) else np.empty((0, Z.shape[1])))
        self.centers_ = self._centers_in_units(X, labels)
        return self

    def _final_fit(self, Z: np.ndarray, k: int, seed: int):
        scanned = self.k_choice_.models.get(k) if self.k_choice_ is not None else None
        if scanned is not None and self.method == "kmeans":
            # Warm start from the scan sample's solution: one Lloyd run on all rows.
            return KMeans(n_clusters=k, init=scanned.cluster_centers_, n_init=1,
                          random_state=seed).fit(Z)
        if scanned is not None and self.method == "gmm":
            return GaussianMixture(n_components=k, covariance_type=self.covariance_type,
                                   reg_covar=self.reg_covar, means_init=scanned.means_,
                                   random_state=seed).fit(Z)
        if scanned is not None and len(Z) <= int(self.scan_size):
            return scanned  # the scan sample was all of the rows
        return self._fit_k(Z, k, seed)

    def _density_min_samples(self, dim: int) -> int:
        return int(self.min_samples) if self.min_samples else int(np.clip(2 * dim, 5, 50))

    def _fit_density(self, Z: np.ndarray) -> np.ndarray:
        ms = min(self._density_min_samples(Z.shape[1]), len(Z))
        if self.method == "hdbscan":
            mcs = self.min_cluster_size or max(5, len(Z) // 100)
            est = HDBSCAN(min_cluster_size=int(min(max(2, mcs), len(Z))),
                          min_samples=min(ms, len(Z)), copy=True).fit(Z)
            self.fit_points_, self.fit_labels_ = Z, est.labels_
            return est.labels_
        eps = self.eps
        if eps is None:
            dist, _ = NearestNeighbors(n_neighbors=ms).fit(Z).kneighbors(Z)
            eps = float(np.quantile(dist[:, -1], _EPS_QUANTILE)) or 1e-9
            self.fit_notes_.append(("segment.cluster.note.auto_eps", {
                "eps": eps, "quantile": _EPS_QUANTILE, "min_samples": ms}))
        est = DBSCAN(eps=eps, min_samples=ms).fit(Z)
        self.eps_ = float(eps)
        self.core_points_ = Z[est.core_sample_indices_]
        self.core_labels_ = est.labels_[est.core_sample_indices_]
        return est.labels_

    def _assignment_key(self) -> str:
        return {"dbscan": "segment.cluster.assign.core",
                "hdbscan": "segment.cluster.assign.neighbour"}.get(
            self.method, "segment.cluster.assign.centroid")

    def _assign(self, Z: np.ndarray) -> np.ndarray:
        if self.method == "dbscan":
            if not len(self.core_points_):
                return np.full(len(Z), NOISE)
            idx, dist = _nearest(Z, self.core_points_)
            return np.where(dist <= self.eps_, self.core_labels_[idx], NOISE)
        if self.method == "hdbscan":
            return self.fit_labels_[_nearest(Z, self.fit_points_)[0]]
        return np.asarray(self.model_.predict(Z))

    def _centers_in_units(self, X, labels: np.ndarray) -> pd.DataFrame:
        """Per group: mean of each numeric input feature, most frequent level of categoricals."""
        df = X if isinstance(X, pd.DataFrame) else pd.DataFrame(
            np.asarray(X), columns=[f"x{i}" for i in range(np.shape(X)[1])])
        prep = self.preprocessor_
        ids = set(prep.id_columns or ()) if prep is not None else set()
        cols = [c for c in df.columns if c not in ids]
        groups = pd.Series(labels, index=df.index, name="segment")
        num = [c for c in cols if pd.api.types.is_numeric_dtype(df[c])]
        out = df[num].groupby(groups).mean()
        for c in cols:
            if c not in num:
                out[c] = df[c].groupby(groups).agg(
                    lambda s: s.mode().iloc[0] if s.notna().any() else None)
        return out[[c for c in cols if c in out.columns]]

    # --- post-fit ----------------------------------------------------------------------------

    def predict(self, X) -> np.ndarray:
        """Segment of new customers (noise possible for DBSCAN/HDBSCAN).

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Same columns as in ``fit``.

        Returns
        -------
        numpy.ndarray of int
            Labels; -1 is the noise group.
        """
        check_is_fitted(self, "labels_")
        X = _checked(X)
        validate_data(self, X, skip_check_array=True, reset=False)
        return self._assign(self._to_model_space(X, fit=False))

    def label_names(self, lang: str = "en") -> dict[int, str]:
        """Display name of every label of ``labels_``.

        Parameters
        ----------
        lang : str, default "en"

        Returns
        -------
        dict of int to str
            ``-1`` is the noise group; clusters are numbered from 1.
        """
        check_is_fitted(self, "labels_")
        return {int(k): (t("segment.cluster.noise", lang=lang) if k == NOISE
                         else t("segment.cluster.name", lang=lang, number=int(k) + 1))
                for k in np.unique(self.labels_)}

    def notes(self, lang: str = "en") -> list[str]:
        """What was done that the output should say (sampling, automatic k, eps, noise).

        Parameters
        ----------
        lang : str, default "en"

        Returns
        -------
        list of str
        """
        check_is_fitted(self, "labels_")
        out = []
        for key, params in self.fit_notes_:
            params = dict(params)
            if "assignment_key" in params:
                params["assignment"] = t(params.pop("assignment_key"), lang=lang)
            out.append(t(key, lang=lang, **params))
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
