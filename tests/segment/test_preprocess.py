"""CustomerPreprocessor: each rule on crafted data, and the plan it shows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmlens.segment.preprocess import CustomerPreprocessor


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 2_000
    freq = rng.poisson(3, n) + 1
    monetary = rng.lognormal(5, 1.2, n)
    df = pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(n)],
        "monetary": monetary,
        "monetary_copy": monetary * 1.1 + rng.normal(0, 1e-3, n),  # near-duplicate
        "frequency": freq,
        "constant": 7.0,
        "share_web": rng.beta(0.5, 3, n),  # skewed, but a share in [0, 1]: not logged
        "spend_trend": rng.normal(0, 1, n),  # takes negative values: not logged
        "mostly_missing": np.where(rng.random(n) < 0.8, np.nan, 1.0),
        "review": np.where(rng.random(n) < 0.1, np.nan, rng.normal(4, 0.5, n)),
        "region": rng.choice(["North", "South", "East", "West"], n, p=[.4, .3, .2, .1]),
    })
    df.loc[:4, "region"] = None
    return df


def _plan(prep, name):
    return next(p for p in prep.plan_ if p.feature == name)


def test_rules(frame):
    prep = CustomerPreprocessor(max_levels=2).fit(frame)
    assert _plan(prep, "customer_id").action == "id"
    assert (_plan(prep, "constant").action, _plan(prep, "constant").reason) == (
        "dropped", "constant")
    dup = _plan(prep, "monetary_copy")
    assert (dup.action, dup.reason, dup.duplicate_of) == ("dropped", "near_duplicate",
                                                          "monetary")
    assert dup.correlation > 0.95
    assert _plan(prep, "mostly_missing").reason == "too_many_missing"
    assert _plan(prep, "monetary").transform == "log1p"
    assert _plan(prep, "monetary").skewness > 1
    assert _plan(prep, "share_web").transform == "none"
    assert _plan(prep, "spend_trend").transform == "none"
    review = _plan(prep, "review")
    assert review.imputed_with == pytest.approx(frame["review"].median())
    region = _plan(prep, "region")
    assert region.levels == ("North", "South") and region.imputed_with == "missing"
    assert prep.numeric_features_ == ["monetary", "frequency", "share_web", "spend_trend",
                                      "review"]
    names = list(prep.get_feature_names_out())
    assert names[-3:] == ["region=North", "region=South", "region=other"]


def test_transform_output(frame):
    prep = CustomerPreprocessor(scaling="standard").fit(frame)
    Z = prep.transform(frame)
    assert Z.shape == (len(frame), len(prep.get_feature_names_out()))
    assert np.isfinite(Z).all()
    num = Z[:, :len(prep.numeric_features_)]
    np.testing.assert_allclose(num.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(num.std(axis=0), 1, atol=1e-9)
    onehot = Z[:, len(prep.numeric_features_):]
    np.testing.assert_array_equal(onehot.sum(axis=1), 1)
    # Unseen levels and missing values on new data go to "other" / the median.
    new = frame.head(3).copy()
    new["region"] = ["Mars", "North", None]
    new["review"] = np.nan
    Znew = prep.transform(new)
    assert np.isfinite(Znew).all()


def test_auto_scaling_goes_robust_with_outliers():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 1_000)
    clean = pd.DataFrame({"a": x, "b": rng.normal(0, 1, 1_000)})
    assert CustomerPreprocessor(scaling="auto").fit(clean).scaling_ == "standard"
    dirty = clean.copy()
    dirty.loc[:49, "a"] = 50.0  # 5 % far outliers
    assert CustomerPreprocessor().fit(dirty).scaling_ == "standard"  # the default
    prep = CustomerPreprocessor(scaling="auto").fit(dirty)
    assert prep.scaling_ == "robust"
    j = prep.numeric_features_.index("a")
    q1, med, q3 = np.percentile(dirty["a"], [25, 50, 75])
    assert prep.center_[j] == pytest.approx(med)
    assert prep.scale_[j] == pytest.approx((q3 - q1) / 1.349)


def test_describe_and_correlations(frame):
    prep = CustomerPreprocessor().fit(frame)
    table = prep.describe()
    assert list(table["feature"]) == list(frame.columns)
    assert set(table.loc[table["action"] == "kept", "scaling"]) <= {prep.scaling_, ""}
    corr = prep.correlation_
    assert list(corr.index) == prep.numeric_features_
    np.testing.assert_allclose(np.diag(corr.to_numpy()), 1)


def test_pca_variance_share_and_codes(frame):
    prep = CustomerPreprocessor(pca=0.9, random_state=0).fit(frame)
    Z = prep.transform(frame)
    assert Z.shape[1] == prep.pca_.n_components_
    assert prep.pca_.explained_variance_ratio_.sum() >= 0.9
    codes = CustomerPreprocessor(categorical_encoding="codes").fit(frame)
    Zc = codes.transform(frame)
    assert codes.categorical_indices_ == [Zc.shape[1] - 1]
    assert set(np.unique(Zc[:, -1])) <= set(range(11))


def test_numpy_input_and_errors():
    X = np.random.default_rng(0).normal(size=(50, 3))
    prep = CustomerPreprocessor().fit(X)
    assert prep.transform(X).shape == (50, 3)
    with pytest.raises(ValueError, match="features"):
        prep.transform(X[:, :2])
    with pytest.raises(ValueError, match="No usable feature"):
        CustomerPreprocessor().fit(np.ones((5, 2)))
    with pytest.raises(ValueError):
        CustomerPreprocessor(scaling="minmax").fit(X)
