"""The churn tables: round trip, the current run, JSON columns, ordering, segment means."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from crmlens.errors import InputError
from crmlens.predict import store
from crmlens.predict.run import risk_bands, score_frame
from crmlens.segment.churn_join import current_churn_run_id, segment_churn, segment_churn_by_name


def _run(**over):
    base = {"step": "churn.train", "mode": "transactions", "target": "churn",
            "window_days": 90, "cutoffs": ["2011-06-12", "2011-09-10"], "as_of": date(2011, 12, 10),
            "best_model": "hist_gbm", "grade": "useful", "threshold": 0.42,
            "positive_rate": 0.37, "n_train": 6, "n_scored": 3,
            "features": [{"name": "recency_days", "label": "Days since last purchase"}],
            "leakage": [], "metrics": {"days_to_next": {"mae": 12.5}},
            "settings": {"bands": [0.3, 0.6]}, "model_file": "churn_1.joblib"}
    return {**base, **over}


MODELS = [
    {"model": "logreg", "roc_auc": 0.71, "pr_auc": 0.6, "brier": 0.2, "params": {"C": 1.0},
     "is_best": False, "is_baseline": False},
    {"model": "baseline", "roc_auc": 0.62, "pr_auc": 0.5, "brier": 0.24, "params": None,
     "is_best": False, "is_baseline": True},
    {"model": "hist_gbm", "roc_auc": 0.78, "pr_auc": float("nan"), "brier": 0.18,
     "params": {"max_depth": 3}, "is_best": True, "is_baseline": False},
]


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def _scores() -> pd.DataFrame:
    frame = score_frame(_Fixed([0.9, 0.1, 0.5]), pd.DataFrame({"x": [1, 2, 3]}),
                        np.array(["a", "b", "c"]))
    frame["observed"] = pd.array([True, False, None], dtype="boolean")
    return frame


class _Fixed:
    def __init__(self, p):
        self.p = np.asarray(p)

    def predict_proba(self, X):
        return np.c_[1 - self.p, self.p]


def test_round_trip_and_current(con):
    store.save_run(con, 1, run=_run(), models=MODELS, scores=_scores(),
                   factors=pd.DataFrame({"customer_id": ["a", "a"], "rank": [1, 2],
                                         "feature": ["recency_days", "gender"],
                                         "value": [182.0, "F"], "reference": [41.5, "M"],
                                         "effect": [0.23, -0.05]}))
    run = store.get_run(con)
    assert run["run_id"] == "1" and run["is_current"]
    assert run["cutoffs"] == ["2011-06-12", "2011-09-10"]
    assert run["metrics"]["days_to_next"]["mae"] == 12.5
    assert run["as_of"] == "2011-12-10"
    store.save_run(con, 2, run=_run(step="churn.score", fitted_in="1"))
    assert store.get_run(con)["run_id"] == "2"
    assert store.get_run(con, 1)["is_current"] is False
    # best first, baseline last; NaN metrics become None; params decoded
    rows = store.read_models(con, "1")
    assert [r["model"] for r in rows] == ["hist_gbm", "logreg", "baseline"]
    assert rows[0]["pr_auc"] is None and rows[0]["params"] == {"max_depth": 3}
    scores = store.read_scores(con, "1")
    assert list(scores["customer_id"]) == ["a", "c", "b"]  # riskiest first
    assert list(scores["risk_band"]) == ["high", "medium", "low"]
    factors = store.read_factors(con, "1", ["a"])
    assert list(factors["value"]) == ["182", "F"] and list(factors["reference"]) == ["41.5", "M"]
    assert store.band_counts(con, "1") == {"high": 1, "medium": 1, "low": 1}


def test_missing_runs_are_clear_errors(con):
    with pytest.raises(InputError) as err:
        store.get_run(con)
    assert err.value.key == "error.churn_no_runs"
    store.save_run(con, 1, run=_run())
    with pytest.raises(InputError) as err:
        store.get_run(con, 99)
    assert err.value.key == "error.churn_run_missing"


def test_risk_bands_bounds():
    assert list(risk_bands(np.array([0.0, 0.29, 0.3, 0.59, 0.6, 1.0]))) == [
        "low", "low", "medium", "medium", "high", "high"]
    with pytest.raises(InputError):
        risk_bands(np.array([0.5]), (0.6, 0.3))


def test_ranks_are_dense_and_riskiest_first():
    frame = score_frame(_Fixed([0.2, 0.8, 0.8, 0.1]), pd.DataFrame({"x": range(4)}),
                        np.array(list("wxyz")))
    assert list(frame["risk_rank"]) == [3, 1, 2, 4]


def test_segment_churn_join(con):
    con.execute("CREATE TABLE segments (run_id INTEGER, customer_id VARCHAR, segment VARCHAR)")
    con.execute("INSERT INTO segments VALUES (7, 'a', 'S1'), (7, 'b', 'S1'), (7, 'c', 'S2'), "
                "(7, 'd', 'S2')")
    assert current_churn_run_id(con) is None and segment_churn_by_name(con, 7) == {}
    store.save_run(con, 1, run=_run(), scores=_scores())
    frame = segment_churn(con, 7).set_index("segment")
    assert frame.loc["S1", "n_scored"] == 2 and frame.loc["S2", "n_scored"] == 1
    assert frame.loc["S1", "churn_rate"] == pytest.approx(0.5)      # a churned, b did not
    assert frame.loc["S1", "mean_risk"] == pytest.approx(0.5)       # (0.9 + 0.1) / 2
    means = segment_churn_by_name(con, 7)
    assert means["S2"]["churn_rate"] is None                        # c had no observed label
    assert means["S2"]["high_risk_share"] == 0.0
    # a response model's probability is not a churn risk: not joined
    store.save_run(con, 2, run=_run(mode="labelled", target="y"), scores=_scores())
    assert current_churn_run_id(con) is None
