"""Model comparison against the naive baseline, the grade, failures, leakage, the final fit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from crmlens.errors import InputError
from crmlens.predict import evaluate
from crmlens.predict.evaluate import CLEAR_GAIN, GRADES, SOME_GAIN, compare_models, fit_final, grade
from crmlens.predict.metrics import METRICS, classification_metrics
from crmlens.predict.models import NaiveBaseline

MODELS = ["logreg", "hist_gbm", "cart"]
NUMERIC = ["recency", "frequency", "noise"]
CATEGORICAL = ["region"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with threadpool_limits(limits=1):
        yield


def _problem(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, size=n)
    frequency = rng.poisson(3, size=n).astype(float)
    region = rng.choice(np.array(["n", "s", "e", "w"], dtype=object), size=n)
    logit = -1.2 + 0.025 * (recency - 60) - 0.3 * (frequency - 3) + 0.7 * (region == "n")
    y = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    X = pd.DataFrame({"recency": recency, "frequency": frequency,
                      "noise": rng.normal(size=n), "region": region})
    X.loc[rng.choice(n, size=n // 20, replace=False), "frequency"] = np.nan
    return X, y


def _splits(n: int, k: int = 3) -> list[tuple[np.ndarray, np.ndarray, str]]:
    folds = KFold(n_splits=k, shuffle=True, random_state=0).split(np.zeros(n))
    return [(train, test, f"fold {i}") for i, (train, test) in enumerate(folds)]


@pytest.fixture(scope="module")
def problem():
    return _problem(900, 1)


@pytest.fixture(scope="module")
def searched(problem):
    X, y = problem
    return compare_models(X, y, _splits(len(y)), numeric=NUMERIC, categorical=CATEGORICAL,
                          models=MODELS, search=True, time_budget=3.0, leakage=False)


@pytest.fixture(scope="module")
def defaults(problem):
    X, y = problem
    return compare_models(X, y, _splits(len(y)), numeric=NUMERIC, categorical=CATEGORICAL,
                          models=MODELS, search=False, leakage=False)


@pytest.mark.parametrize("which", ["searched", "defaults"])
def test_table_has_one_row_per_family_and_baseline_last(which, request):
    cmp = request.getfixturevalue(which)
    table = cmp.table
    assert table["model"].tolist() == [*MODELS, "baseline"]
    for column in (*METRICS, "roc_auc_std", "fit_seconds", "n_train", "n_test", "params",
                   "n_tried", "error"):
        assert column in table.columns
    assert table["error"].isna().all()
    assert (table["n_test"] == 900).all()
    assert (table["n_train"] == 600).all()
    assert table["roc_auc"].between(0, 1).all()
    # the same threshold for every row
    assert (table["threshold"] == cmp.threshold).all()
    # all families learn something; the baseline ranks at random
    assert (table.set_index("model").loc[MODELS, "roc_auc"] > 0.65).all()
    assert table.set_index("model").loc["baseline", "roc_auc"] == pytest.approx(0.5, abs=0.03)


def test_best_is_the_family_with_the_highest_auc(searched, defaults):
    for cmp in (searched, defaults):
        families = cmp.table[cmp.table["model"] != "baseline"].set_index("model")
        assert cmp.best == families["roc_auc"].idxmax()
        assert cmp.best_auc == pytest.approx(families["roc_auc"].max())
        assert cmp.baseline_auc == pytest.approx(
            cmp.table.set_index("model").loc["baseline", "roc_auc"])
        assert cmp.grade == grade(cmp.best_auc, cmp.baseline_auc) == "clearly_better"


def test_search_tries_settings(searched, defaults):
    families = searched.table[searched.table["model"] != "baseline"]
    assert (families["n_tried"] >= 1).all()
    assert (defaults.table["n_tried"] == 0).all()
    assert all(p == {} for p in defaults.table["params"].iloc[:-1])
    # chosen settings are ones from the family's search space (or the defaults)
    for name, params in zip(families["model"], families["params"]):
        space = evaluate.search_space(name)
        assert all(key in space and value in space[key] for key, value in params.items())


def test_default_threshold_is_the_best_f1_of_the_best_model(defaults):
    from crmlens.predict.metrics import best_f1_threshold

    pred = defaults.predictions
    assert defaults.threshold == pytest.approx(best_f1_threshold(pred["y_true"],
                                                                 pred[defaults.best]))


def test_predictions_frame(defaults, problem):
    X, y = problem
    pred = defaults.predictions
    assert len(pred) == len(y)
    assert set(pred.columns) == {"row", "split", "y_true", *MODELS, "baseline"}
    np.testing.assert_array_equal(pred["y_true"], y[pred["row"]])
    assert sorted(pred["split"].unique()) == [0, 1, 2]
    for name in MODELS:
        assert pred[name].between(0, 1).all()
    # metrics in the table are those of the pooled predictions
    for name in [*MODELS, "baseline"]:
        row = defaults.table.set_index("model").loc[name]
        assert row["roc_auc"] == pytest.approx(roc_auc_score(pred["y_true"], pred[name]))
        assert row["log_loss"] == pytest.approx(
            classification_metrics(pred["y_true"], pred[name])["log_loss"])
    # the baseline's out-of-fold forecast is each fold's training rate
    splits = _splits(len(y))
    for k, (train, test, _) in enumerate(splits):
        got = pred.loc[pred["split"] == k, "baseline"].unique()
        assert got.tolist() == pytest.approx([y[train].mean()])


def test_explicit_threshold_and_baseline_rule(problem):
    X, y = problem
    cmp = compare_models(X, y, _splits(len(y)), numeric=NUMERIC, categorical=CATEGORICAL,
                         models=["logreg"], search=False, leakage=False, threshold=0.3,
                         baseline=NaiveBaseline(feature="recency", threshold=90))
    assert cmp.threshold == 0.3 and (cmp.table["threshold"] == 0.3).all()
    base = cmp.table.set_index("model").loc["baseline"]
    assert base["params"] == {"feature": "recency", "threshold": 90}
    # the rule baseline ranks better than chance but worse than the model
    assert 0.55 < base["roc_auc"] < cmp.best_auc


@pytest.mark.parametrize("best,baseline,expected", [
    (0.80, 0.70, "clearly_better"),
    (0.70 + CLEAR_GAIN + 1e-9, 0.70, "clearly_better"),
    (0.70 + CLEAR_GAIN - 1e-3, 0.70, "better"),
    (0.72, 0.70, "better"),
    (0.70 + SOME_GAIN - 1e-3, 0.70, "no_better"),
    (0.69, 0.70, "no_better"),
    (float("nan"), 0.70, "no_better"),
    (0.56, float("nan"), "clearly_better"),  # a NaN baseline counts as 0.5
    (0.52, float("nan"), "better"),
])
def test_grade_thresholds(best, baseline, expected):
    assert grade(best, baseline) == expected
    assert expected in GRADES


def test_a_failing_family_is_reported_and_the_others_go_on(problem, monkeypatch):
    X, y = problem
    real = evaluate.make_model

    def broken(name, **kwargs):
        if name == "cart":
            raise ValueError("cart exploded")
        return real(name, **kwargs)

    monkeypatch.setattr(evaluate, "make_model", broken)
    cmp = compare_models(X, y, _splits(len(y)), numeric=NUMERIC, categorical=CATEGORICAL,
                         models=MODELS, search=True, time_budget=1.0, leakage=False)
    table = cmp.table.set_index("model")
    assert table.index.tolist() == [*MODELS, "baseline"]
    assert table.loc["cart", "error"] == "cart exploded"
    assert math.isnan(table.loc["cart", "roc_auc"])
    assert table.loc[["logreg", "hist_gbm", "baseline"], "error"].isna().all()
    assert "cart" not in cmp.predictions.columns
    assert cmp.best in ("logreg", "hist_gbm")


def test_no_family_works(problem, monkeypatch):
    X, y = problem

    def broken(name, **kwargs):
        raise ValueError(f"{name} exploded")

    monkeypatch.setattr(evaluate, "make_model", broken)
    with pytest.raises(InputError) as info:
        compare_models(X, y, _splits(len(y)), numeric=NUMERIC, categorical=CATEGORICAL,
                       models=["logreg", "cart"], search=False, leakage=False)
    assert info.value.key == "error.predict_models.no_model_worked"
    assert "cart exploded" in info.value.params["errors"]


def test_bad_arguments(problem):
    X, y = problem
    with pytest.raises(InputError) as info:
        compare_models(X, y, _splits(len(y)), numeric=NUMERIC, categorical=CATEGORICAL,
                       models=["logreg", "deep_forest"], search=False, leakage=False)
    assert info.value.key == "error.predict_models.unknown_family"
    with pytest.raises(InputError):
        compare_models(X, y, [], numeric=NUMERIC, categorical=CATEGORICAL, models=["logreg"],
                       search=False, leakage=False)


def test_leakage_list_flags_a_leaky_column(problem):
    X, y = problem
    rng = np.random.default_rng(9)
    leaky = X.assign(cancel_reason=y + rng.normal(0, 0.25, size=len(y)))
    cmp = compare_models(leaky, y, _splits(len(y)), numeric=[*NUMERIC, "cancel_reason"],
                         categorical=CATEGORICAL, models=["logreg"], search=False,
                         leakage=True)
    assert [w["feature"] for w in cmp.leakage] == ["cancel_reason"]
    assert cmp.leakage[0]["rule"] == "high_auc"
    # and the honest frame gives no warning
    clean = compare_models(X, y, _splits(len(y)), numeric=NUMERIC, categorical=CATEGORICAL,
                           models=["logreg"], search=False, leakage=True)
    assert clean.leakage == []


def test_fit_final_is_calibrated_on_the_raw_frame(problem):
    X, y = problem
    model = fit_final(X, y, name="hist_gbm", params={"max_iter": 50}, numeric=NUMERIC,
                      categorical=CATEGORICAL)
    assert isinstance(model, CalibratedClassifierCV)
    assert model.method == "sigmoid"  # the default
    assert len(model.calibrated_classifiers_) == 1  # ensemble=False: one model on all rows
    X_new, y_new = _problem(600, 2)
    proba = model.predict_proba(X_new)[:, 1]
    assert ((proba >= 0) & (proba <= 1)).all()
    assert proba.mean() == pytest.approx(y.mean(), abs=0.03)
    assert roc_auc_score(y_new, proba) > 0.7


def test_fit_final_calibration_method(problem):
    X, y = problem
    default = fit_final(X, y, name="logreg", numeric=NUMERIC, categorical=CATEGORICAL)
    assert default.method == "sigmoid"
    iso = fit_final(X, y, name="logreg", numeric=NUMERIC, categorical=CATEGORICAL,
                    method="isotonic")
    assert iso.method == "isotonic"
    p_iso = iso.predict_proba(X)[:, 1]
    assert p_iso.mean() == pytest.approx(y.mean(), abs=0.02)
    # isotonic steps: far fewer distinct values than the sigmoid's smooth map
    assert len(np.unique(p_iso)) < len(np.unique(default.predict_proba(X)[:, 1]))


def test_fit_final_without_calibration(problem):
    X, y = problem
    model = fit_final(X, y, name="logreg", numeric=NUMERIC, categorical=CATEGORICAL,
                      calibrate=False)
    assert isinstance(model, Pipeline)
    assert model.predict_proba(X).shape == (len(y), 2)
    # too few positives to calibrate: the plain model
    y_rare = np.zeros(len(y), dtype=int)
    y_rare[:2] = 1
    plain = fit_final(X, y_rare, name="logreg", numeric=NUMERIC, categorical=CATEGORICAL)
    assert isinstance(plain, Pipeline)


def test_fit_final_calibrates_on_held_out_predictions(problem):
    from crmlens.predict.evaluate import PlattCalibrated

    X, y = problem
    rng = np.random.default_rng(4)
    # held-out probabilities that are badly over-confident: the sigmoid must shrink them
    true_p = rng.uniform(0.05, 0.95, 5_000)
    y_out = (rng.uniform(size=true_p.size) < true_p).astype(int)
    squashed = 1 / (1 + np.exp(-4 * np.log(true_p / (1 - true_p))))
    model = fit_final(X, y, name="logreg", numeric=NUMERIC, categorical=CATEGORICAL,
                      held_out=(y_out, squashed))
    assert isinstance(model, PlattCalibrated)
    assert model.a_ == pytest.approx(0.25, abs=0.05)  # over-confident scores pulled in
    proba = model.predict_proba(X)
    assert proba.shape == (len(y), 2) and np.allclose(proba.sum(axis=1), 1)
    # one fit on all rows, and the ranking of that model is kept
    inner = model.estimator.predict_proba(X)[:, 1]
    assert np.array_equal(np.argsort(inner, kind="stable"),
                          np.argsort(proba[:, 1], kind="stable"))
    # a held-out set with one class cannot calibrate: back to cross-fitting
    fallback = fit_final(X, y, name="logreg", numeric=NUMERIC, categorical=CATEGORICAL,
                         held_out=(np.zeros(10), np.full(10, 0.3)))
    assert isinstance(fallback, CalibratedClassifierCV)
