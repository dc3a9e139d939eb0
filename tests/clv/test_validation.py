"""Holdout validation: hand-computed metrics and baseline, curve invariants, model comparison."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from crmlens.clv import validation
from crmlens.clv._fitting import FitError
from crmlens.clv.bgnbd import BetaGeoModel
from crmlens.clv.gamma_gamma import GammaGammaModel
from crmlens.clv.registry import DISCRETE_TIME, available_purchase_models
from crmlens.clv.summary import Summary, calibration_and_holdout, compress, rfm_summary
from crmlens.clv.tracking import repeat_purchases_by_period
from crmlens.clv.validation import (
    baseline_purchases,
    compare_models,
    evaluate_holdout,
    grade,
)
from crmlens.errors import InputError

CAL, OBS = "2024-01-01", "2024-07-01"      # a Monday and a 1st: valid for every unit


def _simulate(n: int, seed: int) -> pd.DataFrame:
    """BG/NBD customers in days from 2023-01-02 for 546 days, plus lines the rules must skip."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(0.6, 1 / 15.0, n), rng.beta(0.8, 3.0, n)
    birth = rng.integers(0, 300, n)
    ids, times = [], []
    for i in range(n):
        t = float(birth[i])
        ids.append(i), times.append(t)
        while True:
            t += rng.exponential(1 / lam[i])
            if t >= 546:
                break
            ids.append(i), times.append(t)
            if rng.random() < p[i]:
                break
    frame = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in ids],
        "ts": pd.Timestamp("2023-01-02") + pd.to_timedelta(times, unit="D"),
        "amount": np.round(rng.gamma(4.0, 10.0, len(ids)), 2),
        "line_type": "product",
    })
    extra = pd.DataFrame({
        # A full return the same day as a purchase nets to 0 (no purchase); a fee line and an
        # anonymous line never count.
        "customer_id": ["C00000", "C00000", "C00001", None],
        "ts": pd.to_datetime(["2024-03-05 10:00", "2024-03-05 12:00", "2024-02-01 09:00",
                              "2024-02-01 09:00"]),
        "amount": [25.0, -25.0, 99.0, 50.0],
        "line_type": ["product", "product", "shipping", "product"],
    })
    return pd.concat([frame, extra], ignore_index=True)


@pytest.fixture(scope="module")
def lines() -> pd.DataFrame:
    return _simulate(1500, seed=7)


@pytest.fixture(scope="module")
def con(lines):
    connection = duckdb.connect()
    connection.register("lines_df", lines)
    connection.execute("CREATE TABLE transactions AS SELECT * FROM lines_df")
    connection.unregister("lines_df")
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def split(con) -> Summary:
    return calibration_and_holdout(con, calibration_end=CAL, observation_end=OBS)


@pytest.fixture(scope="module")
def bgnbd(split) -> BetaGeoModel:
    rows, weights = compress(split)
    return BetaGeoModel().fit(rows[:, 0], rows[:, 1], rows[:, 2], sample_weight=weights)


@pytest.fixture(scope="module")
def evaluation(bgnbd, split, con):
    return evaluate_holdout(bgnbd, split, con=con)


class _Fixed:
    """A stand-in model whose holdout predictions are given."""

    model_name = "fixed"

    def __init__(self, predictions):
        self.predictions = np.asarray(predictions, dtype=float)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        return self.predictions


def _hand_split() -> Summary:
    frame = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e"],
        "frequency": np.array([2, 0, 0, 5, 1], dtype="int64"),
        "recency": [8.0, 0.0, 0.0, 19.0, 2.0],
        "T": [10.0, 0.0, 4.0, 20.0, 12.0],
        "monetary_value": [10.0, 0.0, 0.0, 20.0, 30.0],
        "frequency_holdout": np.array([1, 0, 2, 3, 0], dtype="int64"),
        "monetary_value_holdout": [12.0, 0.0, 5.0, 18.0, 0.0],
    })
    return Summary(frame, "days", 1, date(2024, 1, 1), date(2024, 1, 6), 5)


# --- hand-worked cases --------------------------------------------------------------------------


def test_baseline_hand_worked():
    s = _hand_split().frame
    baseline, details = baseline_purchases(s["frequency"], s["T"], duration_holdout=5,
                                           recency=s["recency"])
    pooled = (2 + 5 + 1) / (10 + 4 + 20 + 12)          # customers with T > 0
    # Window L = min(5, max T = 20) = 5; established (T >= 5): a, d, e; bought in the last 5
    # units (T - recency < 5): a (2) and d (1), not e (10) -> retention 2/3.
    assert details["baseline_rate"] == pytest.approx(pooled)
    assert details["retention"] == pytest.approx(2 / 3)
    assert details["retention_window"] == 5
    assert details["retention_customers"] == 3
    rates = np.array([2 / 10, pooled, 0 / 4, 5 / 20, 1 / 12])
    np.testing.assert_allclose(baseline, rates * 5 * 2 / 3)


def test_baseline_retention_window_capped_by_history():
    # Holdout longer than any customer's history: L = max T = 3; only T >= 3 customers count.
    _, details = baseline_purchases([1, 0], [3.0, 1.0], duration_holdout=10, recency=[1.0, 0.0])
    assert details["retention_window"] == 3
    assert details["retention"] == 1.0            # 3 - 1 = 2 < 3
    assert details["retention_customers"] == 1


def test_metrics_hand_computed():
    split = _hand_split()
    predictions = np.array([1.5, 0.2, 0.5, 2.0, 0.4])
    ev = evaluate_holdout(_Fixed(predictions), split)
    actual = np.array([1, 0, 2, 3, 0], dtype=float)
    diff = predictions - actual
    m = ev.metrics
    assert m["n_customers"] == 5
    assert m["mae"] == pytest.approx(np.abs(diff).mean())
    assert m["rmse"] == pytest.approx(np.sqrt((diff**2).mean()))
    assert m["correlation"] == pytest.approx(np.corrcoef(predictions, actual)[0, 1])
    assert m["expected_total"] == pytest.approx(4.6)
    assert m["actual_total"] == 6
    assert m["aggregate_error"] == pytest.approx(4.6 / 6 - 1)
    baseline = ev.per_customer["baseline"].to_numpy()
    assert m["baseline_mae"] == pytest.approx(np.abs(baseline - actual).mean())
    assert m["baseline_rmse"] == pytest.approx(np.sqrt(((baseline - actual) ** 2).mean()))
    assert m["mae_improvement"] == pytest.approx(1 - m["mae"] / m["baseline_mae"])
    assert ev.grade == grade(m["mae"], m["baseline_mae"])
    assert ev.cumulative is None                     # no connection given
    assert ev.model == "fixed" and ev.duration_holdout == 5
    assert ev.per_customer["customer_id"].tolist() == ["a", "b", "c", "d", "e"]


def test_by_frequency_buckets_hand_computed():
    split = _hand_split()
    ev = evaluate_holdout(_Fixed([1.5, 0.2, 0.5, 2.0, 0.4]), split, max_frequency_bucket=2)
    bf = ev.by_frequency
    assert bf["frequency"].tolist() == [0, 1, 2]
    assert bf["label"].tolist() == ["0", "1", "2+"]
    assert bf["customers"].tolist() == [2, 1, 2]     # b, c | e | a, d (5 -> "2+")
    np.testing.assert_allclose(bf["actual"], [1.0, 0.0, 2.0])
    np.testing.assert_allclose(bf["expected"], [0.35, 0.4, 1.75])


def test_spend_metrics_hand_computed():
    split = _hand_split()
    gg = GammaGammaModel()
    gg.params_ = {"p": 6.0, "q": 4.0, "v": 15.0}       # set by hand: no fit needed
    ev = evaluate_holdout(_Fixed([1, 0, 1, 1, 0]), split, spend_model=gg)
    buyers = split.frame[split.frame["frequency_holdout"] > 0]       # a, c, d
    f = buyers["frequency"].to_numpy(float)
    m = buyers["monetary_value"].to_numpy(float)
    weight = 6 * f / (6 * f + 4 - 1)
    predicted = (1 - weight) * 15 * 6 / 3 + weight * m
    actual = buyers["monetary_value_holdout"].to_numpy(float)
    assert ev.metrics["spend_n_customers"] == 3
    assert ev.metrics["spend_mae"] == pytest.approx(np.abs(predicted - actual).mean())
    assert ev.metrics["spend_bias"] == pytest.approx((predicted - actual).mean())
    # Naive spend: own mean for repeat buyers, the frequency-weighted population mean for c.
    population = (2 * 10 + 5 * 20 + 1 * 30) / 8
    naive = np.array([10.0, population, 20.0])
    assert ev.metrics["spend_baseline_mae"] == pytest.approx(np.abs(naive - actual).mean())


@pytest.mark.parametrize(("mae", "expected"), [
    (0.95, "better"), (0.9, "better"), (0.96, "similar"), (1.0, "similar"),
    (1.04, "similar"), (1.05, "worse"), (2.0, "worse"),
])
def test_grade_margins(mae, expected):
    assert grade(mae, 1.0) == expected


def test_grade_with_perfect_baseline():
    assert grade(0.0, 0.0) == "similar"
    assert grade(0.1, 0.0) == "worse"


# --- on simulated transactions ------------------------------------------------------------------


def test_by_frequency_sums_equal_totals(evaluation, split):
    bf = evaluation.by_frequency
    assert bf["customers"].sum() == len(split)
    assert (bf["customers"] * bf["actual"]).sum() == pytest.approx(
        evaluation.metrics["actual_total"])
    assert (bf["customers"] * bf["expected"]).sum() == pytest.approx(
        evaluation.metrics["expected_total"])
    assert (bf["customers"] * bf["baseline"]).sum() == pytest.approx(
        evaluation.metrics["baseline_total"])
    assert bf["label"].iloc[-1] == "7+"
    assert (split.frame["frequency"] >= 7).sum() == bf["customers"].iloc[-1]


def _repeat_purchases_by_hand(lines: pd.DataFrame) -> int:
    """Repeat purchase days (net > 0, not the first) of customers first seen before CAL."""
    ok = lines[lines["customer_id"].notna() & (lines["line_type"] == "product")
               & (lines["ts"] < pd.Timestamp(OBS))]
    net = ok.groupby(["customer_id", ok["ts"].dt.floor("D")])["amount"].sum().round(6)
    days = net[net > 0].reset_index()
    first = days.groupby("customer_id")["ts"].transform("min")
    keep = days[first < pd.Timestamp(CAL)]
    return int(len(keep) - keep["customer_id"].nunique())


def test_cumulative_actual_matches_the_table(evaluation, split, lines):
    cum = evaluation.cumulative
    total = _repeat_purchases_by_hand(lines)
    assert cum["actual"].iloc[-1] == total
    assert total == split.frame["frequency"].sum() + split.frame["frequency_holdout"].sum()
    at_cal = cum.loc[~cum["holdout"], "actual"].iloc[-1]
    assert at_cal == split.frame["frequency"].sum()
    assert cum["actual"].is_monotonic_increasing
    # Every day from the first calibration purchase to the last holdout day.
    assert cum["period_start"].iloc[-1] == date(2024, 6, 30)
    assert cum["period"].tolist() == list(range(len(cum)))
    assert cum["holdout"].sum() == split.duration_holdout == 182


def test_cumulative_expected_at_calibration_end(evaluation, split, bgnbd):
    cum = evaluation.cumulative
    expected_at_cal = cum.loc[~cum["holdout"], "expected"].iloc[-1]
    ages = split.frame["T"].to_numpy()
    assert expected_at_cal == pytest.approx(bgnbd.expected_number_of_purchases_up_to_time(
        ages).sum(), rel=1e-9)
    assert cum["expected"].iloc[0] == 0.0
    assert cum["expected"].is_monotonic_increasing


def test_model_beats_the_naive_baseline_on_its_own_kind_of_data(evaluation):
    m = evaluation.metrics
    assert evaluation.grade == "better"
    assert m["mae"] < m["baseline_mae"]
    assert abs(m["aggregate_error"]) < 0.15
    assert m["correlation"] > 0.5
    assert 0 < m["retention"] < 1


@pytest.mark.parametrize("unit", ["weeks", "months"])
def test_tracking_other_units(con, unit):
    s = calibration_and_holdout(con, calibration_end=CAL, observation_end=OBS, unit=unit)
    track = repeat_purchases_by_period(con, calibration_end=CAL, observation_end=OBS, unit=unit)
    holdout = track["period_start"] >= date(2024, 1, 1)
    assert track.loc[~holdout, "repeats"].sum() == s.frame["frequency"].sum()
    assert track.loc[holdout, "repeats"].sum() == s.frame["frequency_holdout"].sum()
    assert holdout.sum() == s.duration_holdout
    assert track["period"].tolist() == list(range(len(track)))
    # The last calibration period's index equals the oldest customer's age.
    assert track.loc[~holdout, "period"].iloc[-1] == s.frame["T"].max()


def test_split_from_another_source_is_refused(con, bgnbd):
    s = calibration_and_holdout(con, calibration_end=CAL, observation_end=OBS)
    late = con.sql("SELECT * FROM transactions WHERE ts >= TIMESTAMP '2023-10-01'")
    with pytest.raises(InputError) as info:
        evaluate_holdout(bgnbd, s, con=con, source=late)
    assert info.value.key == "error.clv_validation.source_mismatch"


def test_summary_without_holdout_is_refused(con, bgnbd):
    plain = rfm_summary(con, as_of=CAL)
    with pytest.raises(InputError) as info:
        evaluate_holdout(bgnbd, plain)
    assert info.value.key == "error.clv_validation.no_holdout"
    with pytest.raises(InputError):
        compare_models(plain)


# --- model comparison ---------------------------------------------------------------------------


class _Broken(BetaGeoModel):
    model_name = "broken"

    def fit(self, frequency, recency, T, sample_weight=None):
        raise FitError("error.clv_model.not_converged", model="Broken", iterations=3,
                       message="test")


@pytest.fixture
def with_broken(monkeypatch):
    real = validation.purchase_model_class
    monkeypatch.setattr(validation, "purchase_model_class",
                        lambda name: _Broken if name == "broken" else real(name))


def test_compare_models_with_a_failing_model(with_broken, split, con, bgnbd):
    result = compare_models(split, models=["broken", "bgnbd"], con=con)
    table = result.table.set_index("model")
    assert not table.loc["broken", "converged"]
    assert "Broken" in table.loc["broken", "error"]
    assert np.isnan(table.loc["broken", "rmse"])
    assert table.loc["bgnbd", "converged"] and table.loc["bgnbd", "error"] is None
    assert result.best == "bgnbd"
    assert table["is_best"].tolist() == [False, True]
    assert set(result.evaluations) == set(result.fitted) == {"bgnbd"}
    ll = bgnbd.log_likelihood_
    assert table.loc["bgnbd", "log_likelihood"] == pytest.approx(ll, rel=1e-6)
    assert table.loc["bgnbd", "aic"] == pytest.approx(8 - 2 * ll, rel=1e-6)
    assert table.loc["bgnbd", "bic"] == pytest.approx(4 * np.log(len(split)) - 2 * ll, rel=1e-6)
    assert table.loc["bgnbd", "grade"] == result.evaluations["bgnbd"].grade
    assert result.evaluations["bgnbd"].cumulative is not None


def test_compare_models_all_failing(with_broken, split):
    with pytest.raises(FitError) as info:
        compare_models(split, models=["broken"])
    assert info.value.key == "error.clv_validation.no_model_fitted"
    assert "Broken" in str(info.value)


def test_compare_models_unknown_name(split):
    with pytest.raises(InputError) as info:
        compare_models(split, models=["bgnbd", "nope"])
    assert info.value.key == "error.clv_unknown_model"


def test_compare_every_available_model(split):
    names = available_purchase_models()
    assert "bgnbd" in names
    result = compare_models(split)                    # default: every importable model
    table = result.table
    assert table["model"].tolist() == names
    converged = table[table["converged"]]
    assert result.best == converged.loc[converged["rmse"].idxmin(), "model"]
    assert table["is_best"].sum() == 1
    for _, row in table.iterrows():
        assert row["comparable_likelihood"] == (row["model"] not in DISCRETE_TIME)
        if row["converged"]:
            assert row["grade"] in ("better", "similar", "worse")
            assert row["n_params"] == len(result.fitted[row["model"]].params_)
        else:
            assert isinstance(row["error"], str) and row["error"]


def test_expected_curve_paths_agree(split, bgnbd):
    # Whole-period births use a convolution; fractional ones the births x periods matrix.
    birth = (split.frame["T"].max() - split.frame["T"]).to_numpy()
    period = np.arange(400, dtype=float)
    convolved = validation._expected_convolved(bgnbd, birth.astype(np.int64), len(period))
    matrix = validation._expected_matrix(bgnbd, birth.astype(float), period)
    np.testing.assert_allclose(convolved, matrix, rtol=1e-9)
    shifted = validation._expected_matrix(bgnbd, birth + 0.5, period)
    assert np.all(shifted <= matrix + 1e-12) and shifted[-1] < matrix[-1]
