"""Scores of a probability forecast: scikit-learn as the oracle, hand-computed lift and capture."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from crmlens.errors import InputError
from crmlens.predict.metrics import (
    CURVE_KINDS,
    METRICS,
    best_f1_threshold,
    classification_metrics,
    curve_points,
    top_share_capture,
)


@pytest.fixture(scope="module")
def forecast():
    rng = np.random.default_rng(7)
    n = 400
    y = rng.binomial(1, 0.2, size=n)
    p = np.clip(0.2 + 0.35 * (y - 0.2) + rng.normal(0, 0.2, size=n), 0.001, 0.999)
    return y, p


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.35])
def test_classification_metrics_match_sklearn(forecast, threshold):
    y, p = forecast
    m = classification_metrics(y, p, threshold=threshold)
    assert set(m) == set(METRICS)
    pred = (p >= threshold).astype(int)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert m["precision"] == pytest.approx(precision_score(y, pred, zero_division=0), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(y, pred), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, pred), abs=1e-12)
    assert m["positive_rate"] == pytest.approx(y.mean())
    assert m["threshold"] == threshold


def test_threshold_is_inclusive():
    # a probability equal to the threshold is predicted 1
    m = classification_metrics([1, 0], [0.5, 0.2], threshold=0.5)
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["accuracy"] == 1.0


def test_no_predicted_positive_gives_zero_precision_and_f1():
    m = classification_metrics([1, 0, 1], [0.1, 0.2, 0.3], threshold=0.9)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["accuracy"] == pytest.approx(1 / 3)


def test_single_class_has_nan_ranking_scores_but_finite_probability_scores():
    m = classification_metrics([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4])
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    assert math.isnan(m["lift_top_decile"]) and math.isnan(m["capture_top_decile"])
    assert m["brier"] == pytest.approx(np.mean(np.array([0.1, 0.2, 0.3, 0.4]) ** 2))
    assert math.isfinite(m["log_loss"])


def test_extreme_probabilities_keep_log_loss_finite():
    m = classification_metrics([1, 0], [0.0, 1.0])
    assert math.isfinite(m["log_loss"]) and m["log_loss"] > 30


def test_lift_and_capture_of_top_decile_by_hand():
    # 20 rows, distinct scores: the top decile is the 2 highest scores
    p = np.linspace(0.99, 0.01, 20)
    y = np.zeros(20, dtype=int)
    y[[0, 5, 6, 10, 19]] = 1  # 5 positives; one of them in the top 2
    m = classification_metrics(y, p)
    assert m["capture_top_decile"] == pytest.approx(1 / 5)
    # positive rate in top 2 = 1/2; overall = 5/20 -> lift 2
    assert m["lift_top_decile"] == pytest.approx((1 / 2) / (5 / 20))
    assert top_share_capture(y, p, share=0.1) == pytest.approx(0.2)
    # top 35 % = 7 rows -> positives 0, 5, 6
    assert top_share_capture(y, p, share=0.35) == pytest.approx(3 / 5)


def test_fractional_top_share_counts_the_boundary_row_partly():
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    y = np.array([0, 1, 0, 0, 1])
    # top 30 % of 5 rows = 1.5 rows: row 0 fully, half of row 1 (a positive)
    assert top_share_capture(y, p, share=0.3) == pytest.approx(0.5 * 1 / 2)


def test_tied_scores_at_the_cut_count_fractionally():
    p = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    y = np.array([0, 1, 1, 0, 0, 0, 0, 0, 0, 1])
    # top 30 % = 3 places: row 0, then 2 of the 4 tied rows (2 positives among them)
    expected = (0 + 2 * 2 / 4) / 3
    assert top_share_capture(y, p, share=0.3) == pytest.approx(expected)


@pytest.mark.parametrize("n,rate", [(100, 0.3), (37, 0.2), (1000, 0.05)])
def test_constant_forecast_has_lift_exactly_one(n, rate):
    rng = np.random.default_rng(n)
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, size=max(1, int(n * rate)), replace=False)] = 1
    m = classification_metrics(y, np.full(n, 0.3))
    assert m["lift_top_decile"] == pytest.approx(1.0, abs=1e-12)
    assert m["capture_top_decile"] == pytest.approx(0.1, abs=1e-12)


@pytest.mark.parametrize("n,positives", [(100, 5), (100, 10), (100, 40), (50, 3)])
def test_perfect_ranking_capture(n, positives):
    y = np.zeros(n, dtype=int)
    y[:positives] = 1
    rng = np.random.default_rng(positives)
    order = rng.permutation(n)
    y = y[order]
    p = np.where(y == 1, 0.9, 0.1) + rng.uniform(0, 0.05, size=n)
    m = classification_metrics(y, p)
    assert m["capture_top_decile"] == pytest.approx(min(1.0, 0.1 * n / positives))
    assert m["lift_top_decile"] == pytest.approx(min(1.0, 0.1 * n / positives) / 0.1)


def test_best_f1_threshold_maximises_f1(forecast):
    y, p = forecast
    best = best_f1_threshold(y, p)
    f1_best = f1_score(y, (p >= best).astype(int))
    # no candidate cut does better
    for t in np.unique(p):
        assert f1_score(y, (p >= t).astype(int)) <= f1_best + 1e-12
    assert best in set(p.tolist())


def test_best_f1_threshold_on_separable_data():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.8])
    t = best_f1_threshold(y, p)
    assert t == pytest.approx(0.6)
    assert f1_score(y, (p >= t).astype(int)) == 1.0


def test_best_f1_threshold_single_class():
    assert best_f1_threshold([1, 1, 1], [0.1, 0.4, 0.9]) == 0.5


def test_roc_curve_points(forecast):
    y, p = forecast
    roc = curve_points(y, p, "roc")
    assert list(roc.columns) == ["x", "y"]
    assert len(roc) <= 101
    assert roc.iloc[0].tolist() == [0.0, 0.0] and roc.iloc[-1].tolist() == [1.0, 1.0]
    assert roc["x"].is_monotonic_increasing and roc["y"].is_monotonic_increasing
    # trapezoid area of the thinned curve is close to the AUC
    assert np.trapezoid(roc["y"], roc["x"]) == pytest.approx(roc_auc_score(y, p), abs=0.02)


def test_roc_curve_is_thinned_keeping_both_ends(forecast):
    y, p = forecast
    small = curve_points(y, p, "roc", max_points=11)
    assert len(small) <= 11
    full = curve_points(y, p, "roc", max_points=10_000)
    assert len(full) > 11
    assert small.iloc[0].tolist() == full.iloc[0].tolist()
    assert small.iloc[-1].tolist() == full.iloc[-1].tolist()


def test_pr_curve_points(forecast):
    y, p = forecast
    pr = curve_points(y, p, "pr")
    assert list(pr.columns) == ["x", "y"]
    assert pr["x"].is_monotonic_increasing  # recall from 0 to 1
    assert pr["x"].iloc[0] == 0.0 and pr["x"].iloc[-1] == 1.0
    assert pr["y"].iloc[0] == 1.0  # precision convention at recall 0
    # at recall 1 the precision is at least the positive rate
    assert pr["y"].iloc[-1] == pytest.approx(y.mean())
    assert ((pr["y"] >= 0) & (pr["y"] <= 1)).all()


def test_lift_curve_points(forecast):
    y, p = forecast
    lift = curve_points(y, p, "lift", max_points=11)
    assert list(lift.columns) == ["x", "y", "n"]
    assert len(lift) == 10
    assert lift["x"].tolist() == pytest.approx([k / 10 for k in range(1, 11)])
    assert lift["n"].tolist() == [40 * k for k in range(1, 11)]
    assert lift["y"].iloc[-1] == pytest.approx(1.0)  # everyone targeted
    assert lift["y"].iloc[0] == pytest.approx(
        classification_metrics(y, p)["lift_top_decile"])
    # a useful forecast: lift falls (weakly) from the top decile
    assert lift["y"].iloc[0] > lift["y"].iloc[-1]


def test_calibration_points_by_hand():
    p = np.array([0.05, 0.05, 0.15, 0.55, 0.95, 1.0])
    y = np.array([0, 1, 0, 1, 1, 1])
    cal = curve_points(y, p, "calibration")
    assert list(cal.columns) == ["x", "y", "n"]
    assert cal["n"].tolist() == [2, 1, 1, 2]  # empty bins left out; 1.0 goes in the last bin
    assert cal["x"].tolist() == pytest.approx([0.05, 0.15, 0.55, 0.975])
    assert cal["y"].tolist() == pytest.approx([0.5, 0.0, 1.0, 1.0])
    assert cal["n"].sum() == len(y)


def test_curve_kinds_are_all_accepted(forecast):
    y, p = forecast
    for kind in CURVE_KINDS:
        frame = curve_points(y, p, kind)
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0


def test_bad_curve_kind():
    with pytest.raises(InputError) as info:
        curve_points([0, 1], [0.1, 0.9], "gain")
    assert info.value.key == "error.predict_models.bad_curve"
    assert "gain" in info.value.message("en")


@pytest.mark.parametrize("y,p", [([], []), ([0, 1], [0.5]), ([0], [0.1, 0.2])])
def test_empty_or_mismatched_input(y, p):
    for call in (lambda: classification_metrics(y, p), lambda: best_f1_threshold(y, p),
                 lambda: top_share_capture(y, p), lambda: curve_points(y, p, "roc")):
        with pytest.raises(InputError) as info:
            call()
        assert info.value.key == "error.predict_models.bad_scores"
