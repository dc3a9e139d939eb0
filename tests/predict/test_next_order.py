"""The expected-days-to-next-order model on a generated shop."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from threadpoolctl import threadpool_limits

from crmlens.datasets.generator import generate_dataset
from crmlens.errors import InputError
from crmlens.predict import next_order
from crmlens.predict.dataset import build_training_frame
from crmlens.predict.next_order import ClippedRegressor, fit_days_to_next, make_days_model
from crmlens.workspace import Workspace

WINDOW = 60


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small fits: OpenMP threads only add overhead, and a lot of it on a busy machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    base = tmp_path_factory.mktemp("days")
    ds = generate_dataset(base / "data", n_customers=1500, seed=5, start="2023-01-01",
                          end="2024-06-30", messy=True)
    ws = Workspace(base / "ws")
    ws.ingest("transactions", ds.transactions)
    ws.ingest("customers", ds.customers)
    with ws.reader() as con:
        return build_training_frame(con, target="churn", window_days=WINDOW, step_days=30,
                                    n_cutoffs=5)


@pytest.fixture(scope="module")
def result(frame):
    return fit_days_to_next(None, frame=frame, window_days=WINDOW, random_state=0)


def test_frame_has_a_real_target(frame):
    days = frame.days_to_next
    assert days.min() >= 0 and days.max() == WINDOW
    # both customers who came back and ones who did not
    assert 0.05 < np.mean(days < WINDOW) < 0.95
    assert frame.categorical  # the categorical path of the preprocessor is exercised


def test_predictions_within_the_window(frame, result):
    pred = result.model.predict(frame.X)
    assert pred.shape == (len(frame.X),)
    assert np.isfinite(pred).all()
    assert pred.min() >= 0.0 and pred.max() <= WINDOW
    # Rows far outside anything seen, all missing, and unknown categories: still in range.
    odd = frame.X.iloc[:3].copy()
    for c in frame.numeric:
        odd[c] = [np.nan, 1e9, -1e9]
    for c in frame.categorical:
        odd[c] = [None, "never seen", "also new"]
    pred = result.model.predict(odd)
    assert np.isfinite(pred).all() and pred.min() >= 0.0 and pred.max() <= WINDOW


def test_beats_the_median_baseline(frame, result):
    m = result.metrics
    train, test, label = frame.splits[-1]
    assert m["split"] == label
    assert m["n_train"] == len(train) and m["n_test"] == len(test)
    assert m["baseline_mae"] > 0
    assert m["mae"] < m["baseline_mae"]
    # the baseline is the median of the training days, scored on the test rows
    y = frame.days_to_next
    want = np.abs(y[test] - np.median(y[train])).mean()
    assert m["baseline_mae"] == pytest.approx(want)
    assert 0 <= m["median_ae"] <= WINDOW


def test_metrics_are_json(result):
    m = json.loads(json.dumps(result.metrics))
    assert {"mae", "baseline_mae", "median_ae", "n_train", "n_test", "window_days", "split",
            "model"} <= set(m)
    assert m["model"] == "hist_gbm" and m["window_days"] == WINDOW
    assert m["loss"] == next_order.LOSS


def test_final_model_uses_all_rows(frame, result):
    assert result.metrics["n_fit"] == len(frame.X)
    # It differs from a model fitted on the last split's training rows only.
    train = frame.splits[-1][0]
    partial = make_days_model(numeric=frame.numeric, categorical=frame.categorical,
                              window_days=WINDOW).fit(frame.X.iloc[train],
                                                      frame.days_to_next[train])
    assert not np.allclose(partial.predict(frame.X), result.model.predict(frame.X))


def test_deterministic(frame, result):
    again = fit_days_to_next(None, frame=frame, window_days=WINDOW, random_state=0)
    assert again.metrics == result.metrics
    np.testing.assert_array_equal(again.model.predict(frame.X), result.model.predict(frame.X))


def test_subsample_cap(frame, monkeypatch):
    monkeypatch.setattr(next_order, "MAX_ROWS", 500)
    small = fit_days_to_next(None, frame=frame, window_days=WINDOW)
    assert small.metrics["n_train"] == 500
    assert small.metrics["n_fit"] == 500
    assert small.metrics["n_test"] == len(frame.splits[-1][1])


def test_without_splits_still_fits(frame):
    bare = dataclasses.replace(frame, splits=[])
    got = fit_days_to_next(None, frame=bare, window_days=WINDOW)
    assert got.metrics["mae"] is None and got.metrics["split"] is None
    assert got.model.predict(frame.X.iloc[:5]).max() <= WINDOW


def test_labelled_frame_is_refused(frame):
    labelled = dataclasses.replace(frame, mode="labelled", days_to_next=None, window_days=None)
    with pytest.raises(InputError) as err:
        fit_days_to_next(None, frame=labelled, window_days=WINDOW)
    assert err.value.key == "error.predict_days_needs_transactions"
    no_days = dataclasses.replace(frame, days_to_next=None)
    with pytest.raises(InputError) as err:
        fit_days_to_next(None, frame=no_days, window_days=WINDOW)
    assert err.value.key == "error.predict_days_needs_transactions"


def test_bad_window(frame):
    with pytest.raises(InputError) as err:
        fit_days_to_next(None, frame=frame, window_days=0)
    assert err.value.key == "error.predict_days_bad_window"


def test_clipped_regressor():
    X = pd.DataFrame({"x": np.arange(10.0)})
    y = 10.0 * np.arange(10.0) - 20.0
    model = ClippedRegressor(LinearRegression(), lower=0.0, upper=50.0).fit(X, y)
    np.testing.assert_allclose(model.predict(pd.DataFrame({"x": [-5.0, 3.0, 100.0]})),
                               [0.0, 10.0, 50.0])
    assert model.n_features_in_ == 1
    with pytest.raises(Exception, match="not fitted"):
        ClippedRegressor(LinearRegression()).predict(X)


def test_model_pickles(frame, result):
    import pickle

    copy = pickle.loads(pickle.dumps(result.model))
    np.testing.assert_array_equal(copy.predict(frame.X.iloc[:50]),
                                  result.model.predict(frame.X.iloc[:50]))
