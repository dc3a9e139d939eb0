"""Segmenter: every method, sampling and assignment, noise, the estimator contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from crmlens.segment.clustering import METHODS, NOISE, QUADRATIC_METHODS, Segmenter
from crmlens.segment.preprocess import CustomerPreprocessor


@pytest.fixture(scope="module")
def customers():
    X, y = make_blobs(1_500, n_features=3, centers=[[0, 0, 0], [6, 0, 0], [0, 6, 0]],
                      cluster_std=0.7, random_state=0)
    df = pd.DataFrame({"customer_id": np.arange(len(X)),
                       "monetary": np.expm1(X[:, 0] * 0.5 + 5),  # money-like, skewed
                       "frequency": X[:, 1] + 10, "tenure_days": X[:, 2] * 30 + 400,
                       "region": np.array(["N", "S", "E"])[y]})
    return df, y


@pytest.mark.parametrize("method", METHODS)
def test_every_method_labels_every_row(customers, method):
    df, y = customers
    seg = Segmenter(method=method, n_clusters=3, random_state=0, sample_size=600).fit(df)
    assert seg.labels_.shape == (len(df),)
    assert seg.n_clusters_ == len(set(seg.labels_) - {NOISE})
    assert adjusted_rand_score(y, seg.labels_) > 0.9, method
    assert seg.sampled_ == (method in QUADRATIC_METHODS)
    assert seg.n_fit_rows_ == (600 if seg.sampled_ else len(df))
    pred = seg.predict(df)
    assert adjusted_rand_score(seg.labels_, pred) > 0.95
    # centers_ are in input units: monetary around exp(5) for every cluster
    assert list(seg.centers_.columns) == ["monetary", "frequency", "tenure_days", "region"]
    assert seg.centers_["frequency"].between(8, 18).all()


def test_sampling_assigns_rest_to_nearest_centroid(customers):
    df, y = customers
    seg = Segmenter(method="agglomerative", linkage="average", n_clusters=3, sample_size=300,
                    random_state=1).fit(df)
    Z = seg.preprocessor_.transform(df)
    d = ((Z[:, None, :] - seg.model_.cluster_centers_[None]) ** 2).sum(-1)
    # The 1,200 unsampled rows get their nearest centroid by construction; the 300 fitted
    # ones agree with it too on separated groups.
    nearest = seg.model_.ids_[d.argmin(1)]
    assert (seg.labels_ == nearest).mean() > 0.99
    note = seg.notes("en")[0]
    assert "300 of 1500" in note and "nearest cluster centroid" in note
    assert "1500" in seg.notes("zh")[0]


def test_dbscan_noise_is_a_named_group():
    rng = np.random.default_rng(0)
    X, _ = make_blobs(2_000, n_features=2, centers=[[0, 0], [8, 8]], cluster_std=0.5,
                      random_state=0)
    outliers = rng.uniform(-20, 30, (40, 2))
    X = np.vstack([X, outliers])
    for method in ("dbscan", "hdbscan"):
        seg = Segmenter(method=method, preprocessor="passthrough", random_state=0,
                        sample_size=800).fit(X)
        assert seg.n_clusters_ == 2, method
        noise = seg.labels_ == NOISE
        assert noise[-40:].mean() > 0.7, method  # far outliers are noise, not merged
        names = seg.label_names("zh")
        assert names[NOISE] == "噪声（离群客户）"
        assert seg.label_names("en")[0] == "Cluster 1"
        assert any("noise" in n for n in seg.notes("en"))
        assert (seg.predict(outliers) == NOISE).mean() > 0.7


def test_density_methods_ignore_k_and_say_so():
    X, _ = make_blobs(500, n_features=2, centers=2, random_state=0)
    seg = Segmenter(method="dbscan", n_clusters=5, preprocessor="passthrough").fit(X)
    assert any("n_clusters was not used" in n for n in seg.notes())


def test_auto_k_through_the_estimator(customers):
    df, y = customers
    seg = Segmenter(method="kmeans", k_range=(2, 6), random_state=0).fit(df)
    assert seg.n_clusters_ == 3 and seg.k_choice_.k == 3
    assert len(seg.k_choice_.table) == 5
    gmm = Segmenter(method="gmm", k_range=(2, 5), random_state=0).fit(df)
    assert gmm.k_choice_.table["bic"].notna().all()
    assert gmm.n_clusters_ == 3


def test_kprototypes_uses_categorical_codes(customers):
    df, y = customers
    seg = Segmenter(method="kprototypes", n_clusters=3, random_state=0).fit(df)
    assert seg.preprocessor_.categorical_encoding == "codes"
    assert seg.model_.modes_.shape == (3, 1)
    auto = Segmenter(method="kprototypes", k_range=(2, 5), random_state=0).fit(df)
    assert auto.n_clusters_ == 3


def test_contract_params_and_clone():
    seg = Segmenter(method="gmm", n_clusters=4, preprocessor=CustomerPreprocessor(pca=2))
    params = seg.get_params(deep=True)
    assert params["preprocessor__pca"] == 2 and params["n_clusters"] == 4
    cloned = clone(seg)
    assert cloned.get_params()["method"] == "gmm"
    assert cloned.preprocessor is not seg.preprocessor
    with pytest.raises(TypeError):
        Segmenter("kmeans")  # keyword-only
    with pytest.raises(ValueError):
        Segmenter(method="kmedoids").fit(np.zeros((10, 2)))
    with pytest.raises(ValueError):
        Segmenter(n_clusters=0).fit(np.zeros((10, 2)))


def _failures():
    # Checks that do not fit a customer segmenter: the preprocessor drops constant columns,
    # so degenerate single-value inputs are refused with our message.
    return {"check_fit2d_1sample": "one row has only constant features, refused"}


@parametrize_with_checks(
    [Segmenter(method="kmeans", n_clusters=3, random_state=0),
     Segmenter(method="agglomerative", n_clusters=3, sample_size=20, random_state=0),
     CustomerPreprocessor()],
    expected_failed_checks=lambda est: _failures())
def test_sklearn_contract(estimator, check):
    check(estimator)
