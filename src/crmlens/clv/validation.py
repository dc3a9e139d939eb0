"""Calibration-vs-holdout validation of the CLV purchase models, against a naive baseline.

A purchase model fitted on the calibration columns of a split predicts each customer's holdout
purchases; the predictions are scored per customer (MAE, RMSE, correlation) and in aggregate,
by calibration frequency (the classic "expected vs actual" chart) and over time (the cumulative
"tracking" curve, actual side counted in DuckDB by :mod:`crmlens.clv.tracking`). The same
scores of a naive baseline, ``repeat rate x holdout length x retention``, give the model a grade:
a model that cannot beat that arithmetic should not be trusted for CLV. ``compare_models`` does
this for every registered model and names the best. Definitions: ``docs/clv.md`` (Validation).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from crmlens.clv._fitting import FitError
from crmlens.clv.registry import DISCRETE_TIME, available_purchase_models, purchase_model_class
from crmlens.clv.summary import Source, Summary, compress
from crmlens.clv.tracking import repeat_purchases_by_period
from crmlens.errors import InputError

log = logging.getLogger(__name__)

# A model is "better" / "worse" than the baseline when its holdout MAE is at least this much
# (relative) below / above the baseline's.
GRADE_MARGIN = 0.05
GRADES = ("better", "similar", "worse")

TABLE_COLUMNS = ("model", "n_params", "log_likelihood", "aic", "bic", "comparable_likelihood",
                 "mae", "rmse", "correlation", "aggregate_error", "baseline_mae",
                 "mae_improvement", "grade", "converged", "error")


@dataclass(frozen=True)
class HoldoutEvaluation:
    """How well a fitted purchase model predicts the holdout purchases of a split.

    Attributes
    ----------
    model : str
        Registry name of the model (its ``model_name``).
    unit : str
        Time unit of the split.
    calibration_end, observation_end : datetime.date
        Exclusive ends of the calibration and holdout windows.
    duration_holdout : int
        Holdout length in units.
    metrics : dict of str to float
        ``n_customers``, ``mae``, ``rmse``, ``correlation`` (Pearson, NaN when either side is
        constant), ``expected_total``, ``actual_total``, ``aggregate_error`` (signed relative:
        ``expected_total / actual_total - 1``), the same for the baseline (``baseline_mae``,
        ``baseline_rmse``, ``baseline_correlation``, ``baseline_aggregate_error``,
        ``baseline_total``), ``mae_improvement`` (``1 - mae / baseline_mae``), the baseline's
        ingredients ``baseline_rate`` (pooled repeat rate per unit), ``retention`` and
        ``retention_window`` (units), and with a spend model ``spend_n_customers``,
        ``spend_mae``, ``spend_rmse``, ``spend_bias``, ``spend_relative_error`` and
        ``spend_baseline_mae``.
    grade : {"better", "similar", "worse"}
        The model against the naive baseline (by holdout MAE, 5 % margin).
    by_frequency : pandas.DataFrame
        ``frequency`` (int; the last bucket ``max_frequency_bucket`` means "that many or
        more"), ``label`` ("0" ... "7+"), ``customers``, and the mean holdout purchases per
        customer ``expected``, ``actual``, ``baseline``.
    cumulative : pandas.DataFrame or None
        ``period`` (int from the first calibration period), ``period_start`` (date),
        ``expected``, ``actual`` (cumulative repeat purchases of the calibration customers
        over calibration and holdout), ``holdout`` (bool); None without a connection.
    per_customer : pandas.DataFrame
        ``customer_id``, ``frequency`` (calibration), ``actual``, ``expected``, ``baseline``.
    """

    model: str
    unit: str
    calibration_end: date
    observation_end: date
    duration_holdout: int
    metrics: dict[str, float]
    grade: str
    by_frequency: pd.DataFrame = field(repr=False)
    cumulative: pd.DataFrame | None = field(repr=False)
    per_customer: pd.DataFrame = field(repr=False)


@dataclass(frozen=True)
class ModelComparison:
    """Several purchase models fitted on the same calibration data and scored on the holdout.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per requested model: ``model``, ``n_params``, ``log_likelihood``, ``aic``,
        ``bic`` (n = customers), ``comparable_likelihood`` (False for discrete-time models,
        whose likelihood is a probability, not a density: their log-likelihood, AIC and BIC
        cannot be compared with the continuous-time models'), ``mae``, ``rmse``,
        ``correlation``, ``aggregate_error``, ``baseline_mae``, ``mae_improvement``,
        ``grade``, ``converged``, ``error`` (None, or the message of a failed fit), and
        ``is_best``.
    evaluations : dict of str to HoldoutEvaluation
        Holdout evaluations of the converged models.
    fitted : dict of str to estimator
        The fitted models by name.
    best : str
        The converged model with the lowest holdout RMSE.
    """

    table: pd.DataFrame
    evaluations: dict[str, HoldoutEvaluation]
    fitted: dict[str, object]
    best: str


def evaluate_holdout(model, split: Summary, *, con: duckdb.DuckDBPyConnection | None = None,
                     source: Source = "transactions", max_frequency_bucket: int = 7,
                     spend_model=None) -> HoldoutEvaluation:
    """Score a fitted purchase model on the holdout of a calibration/holdout split.

    Parameters
    ----------
    model : estimator
        A purchase model already fitted on ``split``'s calibration columns (``frequency``,
        ``recency``, ``T``).
    split : Summary
        Output of :func:`crmlens.clv.summary.calibration_and_holdout`.
    con : duckdb.DuckDBPyConnection, optional
        Connection holding ``source``; needed only for the cumulative curve (None skips it).
    source : str, Path or DuckDBPyRelation, default "transactions"
        The transactions the split was computed from.
    max_frequency_bucket : int, default 7
        Calibration frequencies of this value or more share the last bucket ("7+").
    spend_model : GammaGammaModel, optional
        A fitted spend model: adds the holdout spend check to ``metrics``.

    Returns
    -------
    HoldoutEvaluation

    Raises
    ------
    InputError
        ``split`` has no holdout columns, or a bad ``max_frequency_bucket``.
    FitError
        The model's predictions are not finite.
    """
    _check_split(split)
    tracking = _tracking(split, con, source) if con is not None else None
    return _evaluate(model, split, tracking=tracking, max_frequency_bucket=max_frequency_bucket,
                     spend_model=spend_model)


def compare_models(split: Summary, *, models: Sequence[str] | None = None,
                   con: duckdb.DuckDBPyConnection | None = None,
                   source: Source = "transactions", penalizer_coef: float = 0.0,
                   max_frequency_bucket: int = 7, spend_model=None) -> ModelComparison:
    """Fit every requested purchase model on the calibration data and compare them on the holdout.

    Parameters
    ----------
    split : Summary
        Output of :func:`crmlens.clv.summary.calibration_and_holdout`.
    models : sequence of str, optional
        Registry names (default: every importable model,
        :func:`crmlens.clv.registry.available_purchase_models`).
    con : duckdb.DuckDBPyConnection, optional
        Connection holding ``source``, for the cumulative curves (counted once for all models).
    source : str, Path or DuckDBPyRelation, default "transactions"
        The transactions the split was computed from.
    penalizer_coef : float, default 0.0
        Passed to every model.
    max_frequency_bucket : int, default 7
        Last frequency bucket of the by-frequency table.
    spend_model : GammaGammaModel, optional
        Fitted spend model, passed to every evaluation.

    Returns
    -------
    ModelComparison

    Raises
    ------
    InputError
        An unknown model name, or a split without holdout columns.
    FitError
        No model could be fitted (the message names each model's error).
    """
    _check_split(split)
    names = list(available_purchase_models() if models is None else models)
    if not names:
        raise InputError("error.clv_validation.no_models")
    classes = {name: purchase_model_class(name) for name in names}   # unknown names fail early
    rows, weights = compress(split)
    tracking = _tracking(split, con, source) if con is not None else None
    n = float(weights.sum())
    records, evaluations, fitted = [], {}, {}
    for name, cls in classes.items():
        record = {"model": name, "comparable_likelihood": name not in DISCRETE_TIME}
        try:
            estimator = cls(penalizer_coef=penalizer_coef).fit(
                rows[:, 0], rows[:, 1], rows[:, 2], sample_weight=weights)
            evaluation = _evaluate(estimator, split, tracking=tracking,
                                   max_frequency_bucket=max_frequency_bucket,
                                   spend_model=spend_model, name=name)
        except FitError as exc:
            log.warning("CLV validation: %s failed: %s", name, exc.message("en"))
            records.append({**record, "converged": False, "error": exc.message("en")})
            continue
        k = len(estimator.params_)
        ll = float(estimator.log_likelihood_)
        m = evaluation.metrics
        records.append({
            **record, "n_params": k, "log_likelihood": ll, "aic": 2 * k - 2 * ll,
            "bic": k * math.log(n) - 2 * ll, "mae": m["mae"], "rmse": m["rmse"],
            "correlation": m["correlation"], "aggregate_error": m["aggregate_error"],
            "baseline_mae": m["baseline_mae"], "mae_improvement": m["mae_improvement"],
            "grade": evaluation.grade, "converged": True, "error": None,
        })
        evaluations[name], fitted[name] = evaluation, estimator
    table = pd.DataFrame.from_records(records).reindex(columns=list(TABLE_COLUMNS))
    table["converged"] = table["converged"].astype(bool)
    table["error"] = table["error"].astype(object).where(table["error"].notna(), None)
    if not evaluations:
        raise FitError("error.clv_validation.no_model_fitted",
                       errors="; ".join(f"{r['model']}: {r['error']}" for r in records))
    best = min(evaluations, key=lambda name: evaluations[name].metrics["rmse"])
    table["is_best"] = table["model"] == best
    return ModelComparison(table, evaluations, fitted, best)


def grade(mae: float, baseline_mae: float, *, margin: float = GRADE_MARGIN) -> str:
    """``"better"``, ``"similar"`` or ``"worse"``: the model's MAE against the baseline's.

    Parameters
    ----------
    mae, baseline_mae : float
        Holdout mean absolute errors of the model and of the baseline.
    margin : float, default 0.05
        Relative difference needed to call the model better (MAE at most
        ``(1 - margin) * baseline_mae``) or worse (at least ``(1 + margin) * baseline_mae``).

    Returns
    -------
    str
    """
    if mae <= (1 - margin) * baseline_mae and mae < baseline_mae:
        return "better"
    if mae >= (1 + margin) * baseline_mae and mae > baseline_mae:
        return "worse"
    return "similar"


def baseline_purchases(frequency, T, *, duration_holdout: float,
                       recency=None) -> tuple[np.ndarray, dict[str, float]]:
    """Naive holdout purchases: calibration repeat rate x holdout length x retention.

    Parameters
    ----------
    frequency, T : array-like of shape (n_customers,)
        Calibration repeat purchases and age (units).
    duration_holdout : float
        Holdout length (units).
    recency : array-like of shape (n_customers,), optional
        Calibration recency; needed for the retention (1 when omitted).

    Returns
    -------
    baseline : numpy.ndarray of shape (n_customers,)
        ``rate_i * duration_holdout * retention`` with ``rate_i = frequency_i / T_i``, or the
        pooled rate ``sum(frequency) / sum(T)`` over customers with ``T > 0`` where ``T_i = 0``.
    details : dict
        ``baseline_rate`` (the pooled rate), ``retention``, ``retention_window`` (L, units)
        and ``retention_customers`` (customers the retention is measured on).

    Notes
    -----
    Retention is measured in the calibration data with a window of the holdout's length,
    ``L = min(duration_holdout, max T)``: among the customers whose first purchase lies at
    least ``L`` units before the last calibration period (``T >= L``), the share with a
    purchase in the last ``L`` calibration periods (``T - recency < L``). It is the share of
    established customers still buying within a window as long as the holdout; 1 when
    ``L < 1`` or no customer qualifies.
    """
    f = np.asarray(frequency, dtype=float)
    age = np.asarray(T, dtype=float)
    h = float(duration_holdout)
    aged = age > 0
    pooled = float(f[aged].sum() / age[aged].sum()) if aged.any() else 0.0
    rate = np.full(len(f), pooled)
    np.divide(f, age, out=rate, where=aged)
    retention, window, eligible = 1.0, 0.0, 0
    if recency is not None and len(age):
        window = float(min(h, np.floor(age.max())))
        if window >= 1:
            r = np.asarray(recency, dtype=float)
            qualifies = age >= window
            eligible = int(qualifies.sum())
            if eligible:
                retention = float(((age - r)[qualifies] < window).mean())
    details = {"baseline_rate": pooled, "retention": retention, "retention_window": window,
               "retention_customers": float(eligible)}
    return rate * h * retention, details


# --- internals ----------------------------------------------------------------------------------


def _check_split(split: Summary) -> None:
    if (split.duration_holdout is None or split.holdout_end is None
            or "frequency_holdout" not in split.frame.columns):
        raise InputError("error.clv_validation.no_holdout")


def _tracking(split: Summary, con, source) -> pd.DataFrame:
    return repeat_purchases_by_period(con, calibration_end=split.observation_end,
                                      observation_end=split.holdout_end, unit=split.unit,
                                      source=source)


def _error_metrics(expected: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    diff = expected - actual
    total_actual, total_expected = float(actual.sum()), float(expected.sum())
    return {
        "mae": float(np.abs(diff).mean()),
        "rmse": float(np.sqrt((diff**2).mean())),
        "correlation": _pearson(expected, actual),
        "expected_total": total_expected,
        "aggregate_error": (total_expected / total_actual - 1) if total_actual else math.nan,
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _evaluate(model, split: Summary, *, tracking: pd.DataFrame | None,
              max_frequency_bucket: int, spend_model, name: str | None = None
              ) -> HoldoutEvaluation:
    if not (isinstance(max_frequency_bucket, (int, np.integer)) and max_frequency_bucket >= 1):
        raise InputError("error.clv_model.bad_option", name="max_frequency_bucket",
                         value=max_frequency_bucket)
    frame = split.frame
    f = frame["frequency"].to_numpy(dtype=float)
    r = frame["recency"].to_numpy(dtype=float)
    age = frame["T"].to_numpy(dtype=float)
    actual = frame["frequency_holdout"].to_numpy(dtype=float)
    h = int(split.duration_holdout)
    expected = np.asarray(
        model.conditional_expected_number_of_purchases_up_to_time(h, f, r, age), dtype=float)
    baseline, details = baseline_purchases(f, age, duration_holdout=h, recency=r)

    model_scores = _error_metrics(expected, actual)
    base_scores = _error_metrics(baseline, actual)
    metrics: dict[str, float] = {"n_customers": float(len(frame)), **model_scores,
                                 "actual_total": float(actual.sum())}
    metrics.update({f"baseline_{k}": v for k, v in base_scores.items() if k != "expected_total"})
    metrics["baseline_total"] = base_scores["expected_total"]
    metrics["mae_improvement"] = (1 - model_scores["mae"] / base_scores["mae"]
                                  if base_scores["mae"] > 0 else math.nan)
    metrics.update(details)
    if spend_model is not None:
        metrics.update(_spend_metrics(spend_model, frame))

    per_customer = pd.DataFrame({"customer_id": frame["customer_id"].to_numpy(),
                                 "frequency": frame["frequency"].to_numpy(),
                                 "actual": actual, "expected": expected, "baseline": baseline})
    cumulative = (_cumulative(model, split, tracking, age) if tracking is not None else None)
    return HoldoutEvaluation(
        model=name or getattr(model, "model_name", type(model).__name__),
        unit=split.unit, calibration_end=split.observation_end,
        observation_end=split.holdout_end, duration_holdout=h, metrics=metrics,
        grade=grade(model_scores["mae"], base_scores["mae"]),
        by_frequency=_by_frequency(per_customer, max_frequency_bucket),
        cumulative=cumulative, per_customer=per_customer)


def _by_frequency(per_customer: pd.DataFrame, max_bucket: int) -> pd.DataFrame:
    bucket = per_customer["frequency"].clip(upper=max_bucket).astype("int64")
    out = (per_customer.assign(bucket=bucket)
           .groupby("bucket", sort=True)
           .agg(customers=("actual", "size"), expected=("expected", "mean"),
                actual=("actual", "mean"), baseline=("baseline", "mean"))
           .reset_index().rename(columns={"bucket": "frequency"}))
    out["customers"] = out["customers"].astype("int64")
    out.insert(1, "label", [f"{v}+" if v == max_bucket else str(v) for v in out["frequency"]])
    return out


def _cumulative(model, split: Summary, tracking: pd.DataFrame, age: np.ndarray) -> pd.DataFrame:
    """Expected cumulative repeat purchases: sum over customers of E[X(k - birth_i)].

    ``birth_i`` is the period index of the first purchase, ``K_cal - T_i`` with ``K_cal`` the
    index of the last calibration period, so the curve at ``K_cal`` is ``sum_i E[X(T_i)]``.
    """
    period = tracking["period"].to_numpy(dtype=float)
    starts = tracking["period_start"].to_numpy()
    holdout = np.array([s >= split.observation_end for s in starts])
    k_cal = float(period[~holdout].max())
    birth = k_cal - age
    if (birth < 0).any():
        # T longer than the transactions allow: the split came from another source.
        raise InputError("error.clv_validation.source_mismatch")
    if np.array_equal(birth, np.round(birth)):
        expected = _expected_convolved(model, birth.astype(np.int64), len(period))
    else:                                   # a hand-made summary with fractional ages
        expected = _expected_matrix(model, birth, period)
    return pd.DataFrame({"period": tracking["period"].to_numpy(), "period_start": starts,
                         "expected": expected,
                         "actual": np.cumsum(tracking["repeats"].to_numpy()).astype(float),
                         "holdout": holdout})


def _expected_convolved(model, birth: np.ndarray, n_periods: int) -> np.ndarray:
    """Whole-period births: customers born per period convolved with E[X(age)], O(K) memory."""
    born = np.bincount(birth, minlength=n_periods)[:n_periods].astype(float)
    curve = np.asarray(model.expected_number_of_purchases_up_to_time(
        np.arange(n_periods, dtype=float)), dtype=float)
    return np.convolve(born, curve)[:n_periods]


def _expected_matrix(model, birth: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Any births: distinct births x periods, each distinct age evaluated once."""
    births, counts = np.unique(birth, return_counts=True)
    ages = period[None, :] - births[:, None]
    alive = ages >= 0
    distinct, index = np.unique(np.where(alive, ages, 0.0), return_inverse=True)
    curve = np.asarray(model.expected_number_of_purchases_up_to_time(distinct), dtype=float)
    return counts @ np.where(alive, curve[index.reshape(ages.shape)], 0.0)


def _spend_metrics(spend_model, frame: pd.DataFrame) -> dict[str, float]:
    """Holdout mean spend vs the spend model's expectation, customers with holdout purchases."""
    buyers = frame[frame["frequency_holdout"] > 0]
    if buyers.empty:
        return {"spend_n_customers": 0.0, "spend_mae": math.nan, "spend_rmse": math.nan,
                "spend_bias": math.nan, "spend_relative_error": math.nan,
                "spend_baseline_mae": math.nan}
    f = buyers["frequency"].to_numpy(dtype=float)
    m = buyers["monetary_value"].to_numpy(dtype=float)
    actual = buyers["monetary_value_holdout"].to_numpy(dtype=float)
    predicted = spend_model.conditional_expected_average_profit(f, np.where(f > 0, m, 0.0))
    # Naive spend: the customer's own calibration mean, the population's for one-time buyers.
    repeat = frame["frequency"].to_numpy() > 0
    population = (float(np.average(frame["monetary_value"].to_numpy()[repeat],
                                   weights=frame["frequency"].to_numpy()[repeat]))
                  if repeat.any() else float(actual.mean()))
    naive = np.where(f > 0, m, population)
    diff = predicted - actual
    return {"spend_n_customers": float(len(buyers)), "spend_mae": float(np.abs(diff).mean()),
            "spend_rmse": float(np.sqrt((diff**2).mean())), "spend_bias": float(diff.mean()),
            "spend_relative_error": float(predicted.sum() / actual.sum() - 1),
            "spend_baseline_mae": float(np.abs(naive - actual).mean())}
