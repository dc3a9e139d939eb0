"""The model zoo: every family on raw mixed data, class balancing, the naive baseline, contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from crmlens.errors import InputError
from crmlens.predict.models import (
    DEFAULT_MAX_ROWS,
    MODEL_FAMILIES,
    BalancedClassifier,
    KernelSVM,
    NaiveBaseline,
    make_model,
    search_space,
    stratified_subsample,
)

NUMERIC = ["recency", "spend"]
CATEGORICAL = ["region"]
# small settings so every family fits in well under a second
FAST = {
    "logreg": {},
    "cart": {"min_samples_leaf": 10},
    "c45": {"min_samples_leaf": 10, "max_depth": 5},
    "random_forest": {"n_estimators": 20, "n_jobs": 1},
    "hist_gbm": {"max_iter": 30, "min_samples_leaf": 10, "early_stopping": False},
    "svm": {},
    "mlp": {"hidden_layer_sizes": (8,), "max_iter": 100, "early_stopping": False},
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with threadpool_limits(limits=1):
        yield


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, size=n)
    spend = rng.lognormal(3, 1, size=n)
    region = rng.choice(np.array(["north", "south", "east"], dtype=object), size=n)
    logit = -1.0 + 0.03 * (recency - 60) + 0.8 * (region == "north")
    y = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    X = pd.DataFrame({"recency": recency, "spend": spend, "region": region,
                      "ignored": rng.normal(size=n)})
    X.loc[rng.choice(n, size=n // 10, replace=False), "spend"] = np.nan
    X.loc[rng.choice(n, size=n // 10, replace=False), "region"] = None
    return X, y


@pytest.fixture(scope="module")
def data():
    X, y = _frame(400, 1)
    X_new, y_new = _frame(120, 2)
    X_new.loc[:9, "region"] = "atlantis"  # a level never seen in training
    return X, y, X_new, y_new


def test_families_are_the_seven_documented():
    assert MODEL_FAMILIES == ("logreg", "cart", "c45", "random_forest", "hist_gbm", "svm", "mlp")
    assert set(DEFAULT_MAX_ROWS) == set(MODEL_FAMILIES)


@pytest.mark.parametrize("name", MODEL_FAMILIES)
def test_every_family_fits_raw_mixed_data(name, data):
    X, y, X_new, y_new = data
    model = make_model(name, numeric=NUMERIC, categorical=CATEGORICAL, params=FAST[name])
    assert [step for step, _ in model.steps] == ["prepare", "model"]
    assert isinstance(model.named_steps["prepare"], ColumnTransformer)
    assert isinstance(model.named_steps["model"], BalancedClassifier)
    model.fit(X, y)
    proba = model.predict_proba(X_new)
    assert proba.shape == (len(X_new), 2)
    assert np.isfinite(proba).all()
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    # the unseen level and missing values are handled; the model learned something
    assert roc_auc_score(y_new, proba[:, 1]) > 0.6
    assert set(model.predict(X_new)) <= {0, 1}
    assert model.named_steps["model"].n_train_ == len(X)


def test_preparation_is_refitted_inside_the_pipeline(data):
    """The scaler learns from the rows the pipeline is fitted on, not from anything else."""
    X, y, _, _ = data
    model = make_model("logreg", numeric=NUMERIC, categorical=CATEGORICAL).fit(X.iloc[:200],
                                                                             y[:200])
    scaler = model.named_steps["prepare"].named_transformers_["num"].named_steps["scale"]
    expected = np.nanmedian(X["recency"].iloc[:200])  # imputer then scaler on 200 rows
    assert scaler.n_samples_seen_ == 200
    assert scaler.mean_[0] == pytest.approx(X["recency"].iloc[:200].fillna(expected).mean())


def test_ignored_columns_do_not_matter(data):
    X, y, X_new, _ = data
    a = make_model("logreg", numeric=NUMERIC, categorical=CATEGORICAL).fit(X, y)
    b = make_model("logreg", numeric=NUMERIC, categorical=CATEGORICAL).fit(
        X.assign(ignored=0.0), y)
    np.testing.assert_allclose(a.predict_proba(X_new), b.predict_proba(X_new))


def test_unknown_family():
    with pytest.raises(InputError) as info:
        make_model("xgboost", numeric=["a"], categorical=[])
    assert info.value.key == "error.predict_models.unknown_family"
    assert "xgboost" in info.value.message("en")
    with pytest.raises(InputError) as info:
        search_space("xgboost")
    assert info.value.key == "error.predict_models.unknown_family"


def test_unknown_param():
    with pytest.raises(InputError) as info:
        make_model("logreg", numeric=["a"], categorical=[], params={"depth": 3, "C": 1.0})
    assert info.value.key == "error.predict_models.unknown_param"
    assert info.value.params["params"] == "depth"


def test_bad_class_weight_and_no_features():
    with pytest.raises(InputError) as info:
        make_model("logreg", numeric=["a"], categorical=[], class_weight="auto")
    assert info.value.key == "error.predict_models.bad_class_weight"
    with pytest.raises(InputError) as info:
        make_model("logreg", numeric=[], categorical=[])
    assert info.value.key == "error.predict_models.no_features"


@pytest.mark.parametrize("name", MODEL_FAMILIES)
def test_search_space_is_accepted_by_make_model(name):
    space = search_space(name)
    assert space and all(isinstance(v, list) and v for v in space.values())
    params = {key: values[-1] for key, values in space.items()}
    model = make_model(name, numeric=["a"], categorical=[], params=params)
    assert model.named_steps["model"].max_rows == DEFAULT_MAX_ROWS[name]
    space["x"] = [1]  # a copy: the stored space is untouched
    assert "x" not in search_space(name)


def test_max_rows_param_overrides_the_cap(data):
    X, y, _, _ = data
    model = make_model("svm", numeric=NUMERIC, categorical=CATEGORICAL,
                       params={"max_rows": 100}).fit(X, y)
    assert model.named_steps["model"].n_train_ == 100
    assert make_model("svm", numeric=["a"], categorical=[],
                      params={"max_rows": None}).named_steps["model"].max_rows is None


# ------------------------------------------------------------------ balancing
@pytest.fixture(scope="module")
def imbalanced():
    rng = np.random.default_rng(11)
    n = 8000
    x = rng.normal(size=(n, 3))
    logit = -3.6 + 1.2 * x[:, 0] - 0.6 * x[:, 1]
    y = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    return x, y


def test_balanced_classifier_keeps_probabilities_on_the_real_scale(imbalanced):
    x, y = imbalanced
    rate = y.mean()
    assert 0.03 < rate < 0.08
    balanced = BalancedClassifier(LogisticRegression(), balance=True).fit(x, y)
    plain = BalancedClassifier(LogisticRegression(), balance=False).fit(x, y)
    raw = LogisticRegression(class_weight="balanced").fit(x, y)
    p_bal = balanced.predict_proba(x)[:, 1]
    # the weighted learner alone is far too high; the prior correction brings it back
    assert raw.predict_proba(x)[:, 1].mean() > 0.3
    assert abs(p_bal.mean() - rate) < 0.02
    np.testing.assert_allclose(balanced.prior_, [1 - rate, rate])
    # ranks like the unweighted model
    p_plain = plain.predict_proba(x)[:, 1]
    assert spearmanr(p_bal, p_plain).statistic > 0.99
    assert roc_auc_score(y, p_bal) == pytest.approx(roc_auc_score(y, p_plain), abs=0.005)


def test_balanced_correction_formula(imbalanced):
    """p ∝ q * prior, with q the weighted learner's probabilities."""
    x, y = imbalanced
    model = BalancedClassifier(LogisticRegression(), balance=True).fit(x, y)
    q = model.estimator_.predict_proba(x)
    expected = q * model.prior_ / (q * model.prior_).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(x), expected)


def test_balanced_weights_multiply_sample_weight(imbalanced):
    x, y = imbalanced
    w = np.ones(len(y))
    a = BalancedClassifier(LogisticRegression(), balance=True).fit(x, y, sample_weight=w)
    b = BalancedClassifier(LogisticRegression(), balance=True).fit(x, y)
    np.testing.assert_allclose(a.estimator_.coef_, b.estimator_.coef_, rtol=1e-6)
    c = BalancedClassifier(LogisticRegression(), balance=True).fit(x, y, sample_weight=2 * w)
    assert not np.allclose(c.estimator_.coef_, b.estimator_.coef_, rtol=1e-6)


def test_balanced_classifier_subsamples(imbalanced):
    x, y = imbalanced
    model = BalancedClassifier(LogisticRegression(), max_rows=1000).fit(x, y)
    assert model.n_train_ == pytest.approx(1000, abs=1)
    assert model.prior_[1] == pytest.approx(y.mean(), abs=0.002)


def test_balanced_classifier_validates_params():
    with pytest.raises(ValueError):
        BalancedClassifier(LogisticRegression(), max_rows=0).fit([[0], [1]], [0, 1])
    with pytest.raises(ValueError):
        BalancedClassifier(object()).fit([[0], [1]], [0, 1])


# ------------------------------------------------------------------ subsample
def test_stratified_subsample_keeps_shares_and_cap():
    y = np.array([0] * 900 + [1] * 90 + [2] * 10)
    idx = stratified_subsample(y, 100, random_state=3)
    assert len(idx) == 100
    assert np.all(np.diff(idx) > 0)  # sorted, no duplicates
    assert np.bincount(y[idx]).tolist() == [90, 9, 1]
    # another seed picks other rows, same shares
    other = stratified_subsample(y, 100, random_state=4)
    assert np.bincount(y[other]).tolist() == [90, 9, 1] and not np.array_equal(idx, other)
    np.testing.assert_array_equal(idx, stratified_subsample(y, 100, random_state=3))


def test_stratified_subsample_keeps_a_rare_class():
    y = np.array([0] * 999 + [1])
    idx = stratified_subsample(y, 50)
    assert y[idx].sum() == 1
    assert len(idx) <= 51


@pytest.mark.parametrize("cap", [None, 10, 11])
def test_stratified_subsample_without_cut(cap):
    y = np.array([0, 1] * 5)
    np.testing.assert_array_equal(stratified_subsample(y, cap), np.arange(10))


# ------------------------------------------------------------------ baseline
def test_baseline_without_rule_predicts_the_training_rate():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0]})
    base = NaiveBaseline().fit(X, [0, 1, 0, 0, 1])
    proba = base.predict_proba(pd.DataFrame({"a": [100.0, np.nan, -1.0]}))
    np.testing.assert_allclose(proba, [[0.6, 0.4]] * 3)
    assert base.predict(X).tolist() == [0] * 5


def test_baseline_rule_groups():
    X = pd.DataFrame({"recency": [10, 20, 30, 100, 200, 300, np.nan, np.nan],
                      "other": list("abcdefgh")})
    y = [0, 0, 1, 1, 1, 0, 1, 1]
    base = NaiveBaseline(feature="recency", threshold=100).fit(X, y)
    # >= 100: [1, 1, 0] -> 2/3; below: [0, 0, 1] -> 1/3; missing: [1, 1] -> 1
    np.testing.assert_allclose(base.group_proba_[:, 1], [2 / 3, 1 / 3, 1.0])
    new = pd.DataFrame({"recency": [100, 99.9, np.nan, 1e6], "other": list("abcd")})
    np.testing.assert_allclose(base.predict_proba(new)[:, 1], [2 / 3, 1 / 3, 1.0, 2 / 3])
    assert base.predict(new).tolist() == [1, 0, 1, 1]


def test_baseline_empty_group_gets_overall_rate():
    X = pd.DataFrame({"recency": [10.0, 20.0, 200.0, 300.0]})
    base = NaiveBaseline(feature="recency", threshold=90).fit(X, [0, 0, 1, 0])
    missing = base.predict_proba(pd.DataFrame({"recency": [np.nan]}))
    np.testing.assert_allclose(missing, [[0.75, 0.25]])


def test_baseline_rule_by_position_on_arrays():
    X = np.array([[0.0, 10.0], [0.0, 200.0], [0.0, np.nan], [0.0, 300.0]])
    base = NaiveBaseline(feature=1, threshold=90).fit(X, [0, 1, 0, 1])
    np.testing.assert_allclose(base.predict_proba(X)[:, 1], [0.0, 1.0, 0.0, 1.0])


def test_baseline_errors():
    X = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(InputError) as info:
        NaiveBaseline(feature="a").fit(X, [0, 1])
    assert info.value.key == "error.predict_models.baseline_rule_incomplete"
    with pytest.raises(InputError) as info:
        NaiveBaseline(feature="b", threshold=1).fit(X, [0, 1])
    assert info.value.key == "error.predict_models.baseline_feature_missing"


# ------------------------------------------------------------------ estimator contract
_NO_RULE_BASELINE_XFAIL = {
    "check_dtype_object": (
        "not applicable: the rule-less baseline never reads feature values (like "
        "DummyClassifier, which sets no_validation)"),
}


def _contract_xfail(estimator) -> dict[str, str]:
    if isinstance(estimator, NaiveBaseline) and estimator.feature is None:
        return _NO_RULE_BASELINE_XFAIL
    return {}


@parametrize_with_checks([BalancedClassifier(LogisticRegression()), NaiveBaseline(),
                          NaiveBaseline(feature=0, threshold=0.0), KernelSVM(n_components=20)])
def test_sklearn_contract(estimator, check, request):
    name = getattr(check, "func", check).__name__
    reason = _contract_xfail(estimator).get(name)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    check(estimator)


def test_rule_less_baseline_accepts_nan_arrays():
    """Its tags say allow_nan, and a DataFrame with NaN works; a NumPy array should too."""
    frame = pd.DataFrame({"a": [np.nan, 1.0, 2.0]})
    assert NaiveBaseline().fit(frame, [0, 1, 1]).prior_[1] == pytest.approx(2 / 3)


def test_rule_less_baseline_accepts_nan_numpy_arrays():
    base = NaiveBaseline().fit(np.array([[np.nan], [1.0], [2.0]]), [0, 1, 1])
    assert base.prior_[1] == pytest.approx(2 / 3)
