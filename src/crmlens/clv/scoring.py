"""Score every customer of a workspace: P(alive), expected purchases, expected spend, CLV, tiers.

The pipeline is ``rfm_summary -> compress -> purchase model -> Gamma-Gamma on repeat buyers ->
predictions``. Predictions are computed once per distinct ``(frequency, recency, T)`` row (what
the purchase model sees) and scattered back to customers, so the cost follows the number of
distinct histories, not of customers; the spend model is closed-form and vectorised.

``model="auto"`` validates on a calibration/holdout split when the history allows it (see
:func:`holdout_split_dates`), otherwise picks by BIC; either way it refits the chosen model on
the full history. Nothing here writes to the workspace: :mod:`crmlens.clv.store` does.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmlens.clv._fitting import FitError
from crmlens.clv.gamma_gamma import GammaGammaModel
from crmlens.clv.no_purchase import probability_no_purchase
from crmlens.clv.registry import (
    DISCRETE_TIME,
    available_purchase_models,
    purchase_model_class,
)
from crmlens.clv.summary import Summary, calibration_and_holdout, compress, rfm_summary
from crmlens.errors import InputError
from crmlens.progress import NO_PROGRESS, Progress

log = logging.getLogger(__name__)

SPEND_MODELS = ("gamma_gamma",)
# Value tiers by CLV rank: (tier, upper bound of the rank share), best first.
TIERS: tuple[tuple[str, float], ...] = (("top", 0.2), ("high", 0.5), ("medium", 0.8),
                                        ("low", 1.0))
# One quarter in each unit: the shortest holdout window "auto" validates on.
QUARTER = {"days": 91, "weeks": 13, "months": 3}
# A BG/NBD fit whose dropout probability a / (a + b) is below this has collapsed onto "nobody
# ever drops out" (every P(alive) = 1); seen on one-year retail data.
COLLAPSE_DROPOUT = 1e-6
# When even the least likely customer is alive with at least this probability, the history
# shows no measurable dropout (one year of wholesale buyers, say) and P(alive) ranks nobody.
NO_DROPOUT_P_ALIVE = 0.99
SCORE_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value", "p_alive",
                 "expected_purchases", "p_purchase", "expected_spend", "clv", "value_tier",
                 "value_rank")


@dataclass
class ClvResult:
    """A fitted purchase (and spend) model and the scores of every customer.

    Attributes
    ----------
    purchase_model : str
        Registry name of the purchase model used (``"bgnbd"``, ``"mbgnbd"`` ...).
    spend_model : str or None
        ``"gamma_gamma"``, or None (observed mean spend used instead).
    unit : str
        Time unit of ``recency``, ``T``, ``horizon`` and ``period_length``.
    observation_end : datetime.date
        Exclusive end of the history used.
    horizon : int
        Prediction horizon in units.
    period_length : float
        Length of a discounting period in units (``discount_rate`` applies per period).
    discount_rate, margin : float
        As given.
    model : estimator
        The fitted purchase model (``params_``, ``se_``, ``log_likelihood_`` ...).
    spend : GammaGammaModel or None
        The fitted spend model.
    scores : pandas.DataFrame
        One row per customer, columns ``SCORE_COLUMNS`` (``value_rank`` 1 = highest CLV).
    diagnostics : dict
        ``gg_correlation``, ``gg_independence_suspect``, ``notes`` (i18n keys),
        ``one_time_note`` (i18n key), ``selection`` (how the model was chosen).
    comparison : object or None
        The :class:`crmlens.clv.validation.ModelComparison` of ``model="auto"``, if any.
    run_id : int or None
        The step's id in the ``runs`` table once stored.
    """

    purchase_model: str
    spend_model: str | None
    unit: str
    observation_end: date
    horizon: int
    period_length: float
    discount_rate: float
    margin: float
    model: Any
    spend: GammaGammaModel | None
    scores: pd.DataFrame = field(repr=False)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    comparison: Any = None
    run_id: int | None = None

    @property
    def n_customers(self) -> int:
        return len(self.scores)

    @property
    def one_time_share(self) -> float:
        return float((self.scores["frequency"] == 0).mean()) if len(self.scores) else 0.0

    @property
    def n_params(self) -> int:
        return len(self.model.params_)

    @property
    def aic(self) -> float:
        return 2 * self.n_params - 2 * float(self.model.log_likelihood_)

    @property
    def bic(self) -> float:
        return _bic(self.model)

    def tier_summary(self) -> pd.DataFrame:
        """Customers, CLV and mean scores per value tier (top first)."""
        return tier_summary(self.scores)


def _bic(model: Any) -> float:
    return (len(model.params_) * math.log(max(float(model.n_customers_), 1.0))
            - 2 * float(model.log_likelihood_))


def tier_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per value tier: ``customers``, ``share``, ``clv_total``, ``clv_share``, ``clv_mean``,
    ``p_alive_mean``, ``expected_purchases_mean`` (tiers in order top, high, medium, low)."""
    total = float(scores["clv"].sum()) if len(scores) else 0.0
    g = scores.groupby("value_tier", observed=True)
    out = pd.DataFrame({
        "customers": g.size(), "clv_total": g["clv"].sum(), "clv_mean": g["clv"].mean(),
        "p_alive_mean": g["p_alive"].mean(),
        "expected_purchases_mean": g["expected_purchases"].mean(),
    }).reindex([name for name, _ in TIERS]).dropna(subset=["customers"])
    out["share"] = out["customers"] / max(len(scores), 1)
    out["clv_share"] = out["clv_total"] / total if total > 0 else 0.0
    out["customers"] = out["customers"].astype("int64")
    return out.rename_axis("tier").reset_index()


# --- inputs -----------------------------------------------------------------------------------


def check_options(*, model: str, unit: str, horizon: int, period_length: float | None,
                  discount_rate: float, margin: float, penalizer_coef: float,
                  spend_model: str | None) -> float:
    """Validate the scoring options (before any work); returns the period length in units."""
    if unit not in QUARTER:
        raise InputError("error.clv_bad_unit", unit=str(unit), units=", ".join(QUARTER))
    if model != "auto":
        purchase_model_class(model)  # InputError naming the known models
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise InputError("error.clv_bad_option", option="horizon", value=str(horizon),
                         expected="integer >= 1")
    length = 1.0 if period_length is None else float(period_length)
    checks = (("period_length", length, math.isfinite(length) and 0 < length <= horizon,
               f"0 < x <= {horizon}"),
              ("discount_rate", discount_rate,
               math.isfinite(discount_rate) and 0 <= discount_rate < 1, "0 <= x < 1"),
              ("margin", margin, math.isfinite(margin) and 0 < margin <= 1, "0 < x <= 1"),
              ("penalizer_coef", penalizer_coef,
               math.isfinite(penalizer_coef) and penalizer_coef >= 0, "x >= 0"))
    for name, value, ok, expected in checks:
        if not ok:
            raise InputError("error.clv_bad_option", option=name, value=str(value),
                             expected=expected)
    if spend_model is not None and spend_model not in SPEND_MODELS:
        raise InputError("error.clv_bad_option", option="spend_model", value=str(spend_model),
                         expected=", ".join(SPEND_MODELS))
    return length


def holdout_split_dates(first_purchase: date, observation_end: date, *, unit: str,
                        horizon: int) -> tuple[date, int] | None:
    """Calibration end and holdout length for ``model="auto"``, or None if history is short.

    The holdout lasts ``max(horizon, one quarter)`` units; the calibration end is the
    observation end minus that, moved back to the start of its period (a Monday, the 1st). At
    least two such windows of history are required (one to calibrate, one to check).
    """
    window = max(int(horizon), QUARTER[unit])
    if unit == "days":
        cal = observation_end - timedelta(days=window)
        enough = first_purchase <= cal - timedelta(days=window)
    elif unit == "weeks":
        cal = observation_end - timedelta(weeks=window)
        cal -= timedelta(days=cal.weekday())
        enough = first_purchase <= cal - timedelta(weeks=window)
    else:
        cal = _add_months(date(observation_end.year, observation_end.month, 1), -window)
        enough = first_purchase <= _add_months(cal, -window)
    return (cal, window) if enough and cal < observation_end else None


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


# --- fitting ----------------------------------------------------------------------------------


def fit_purchase_model(name: str, summary: Summary | pd.DataFrame, *,
                       penalizer_coef: float = 0.0) -> Any:
    """Fit the registry model ``name`` on a summary (compressed to weighted distinct rows)."""
    rows, weights = compress(summary)
    model = purchase_model_class(name)(penalizer_coef=penalizer_coef)
    return model.fit(rows[:, 0], rows[:, 1], rows[:, 2], sample_weight=weights)


def fit_spend_model(frame: pd.DataFrame, *, penalizer_coef: float = 0.0) -> GammaGammaModel:
    """Gamma-Gamma on the repeat buyers (the independence check is kept on the model)."""
    repeat = frame[frame["frequency"] > 0]
    if len(repeat) < 2:
        raise FitError("error.clv_too_few_repeat_buyers", n=len(repeat))
    keys = repeat.groupby(["frequency", "monetary_value"], sort=False).size()
    freq = keys.index.get_level_values(0).to_numpy(dtype=float)
    spend = keys.index.get_level_values(1).to_numpy(dtype=float)
    with warnings.catch_warnings():
        # The dependence warning is reported in the diagnostics (and logged), not twice.
        warnings.simplefilter("ignore", UserWarning)
        return GammaGammaModel(penalizer_coef=penalizer_coef).fit(
            freq, spend, sample_weight=keys.to_numpy())


def collapsed(model: Any) -> bool:
    """Whether a BG/NBD fit put the dropout probability at 0 (every P(alive) = 1)."""
    p = model.params_
    if getattr(model, "model_name", None) != "bgnbd" or "a" not in p or "b" not in p:
        return False
    return p["a"] / (p["a"] + p["b"]) < COLLAPSE_DROPOUT


def _continuous_models() -> list[str]:
    return [m for m in available_purchase_models() if m not in DISCRETE_TIME]


def choose_by_bic(summary: Summary, *, penalizer_coef: float = 0.0
                  ) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Fit every available continuous-time model; the lowest BIC wins.

    Returns the winner's name, the fitted models by name and one candidate row per model
    (``model``, ``log_likelihood``, ``bic``, ``error``).
    """
    fitted: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for name in _continuous_models():
        try:
            model = fit_purchase_model(name, summary, penalizer_coef=penalizer_coef)
        except FitError as exc:
            rows.append({"model": name, "log_likelihood": None, "bic": None,
                         "error": exc.message("en")})
            continue
        fitted[name] = model
        rows.append({"model": name, "log_likelihood": float(model.log_likelihood_),
                     "bic": _bic(model), "error": None})
    if not fitted:
        raise FitError("error.clv_no_model_fits", models=", ".join(r["model"] for r in rows))
    best = min(fitted, key=lambda n: _bic(fitted[n]))
    return best, fitted, rows


def _first_purchase(con: duckdb.DuckDBPyConnection, source: str) -> date | None:
    row = con.execute(f'SELECT min(ts)::DATE FROM "{source}" WHERE customer_id IS NOT NULL '
                      "AND line_type = 'product' AND amount > 0").fetchall()[0]
    return row[0]


def _select_auto(con, summary: Summary, *, unit: str, horizon: int, penalizer_coef: float,
                 source: str, notes: list[str], progress: Progress
                 ) -> tuple[str, Any, dict[str, Any], Any]:
    """The model ``auto`` picks: by holdout when possible, else by BIC (see module doc)."""
    first = _first_purchase(con, source)
    split_at = (holdout_split_dates(first, summary.observation_end, unit=unit, horizon=horizon)
                if first is not None else None)
    compare = None
    if split_at is not None:
        try:
            from crmlens.clv.validation import compare_models as compare
        except ImportError:
            notes.append("clv.note.auto_bic_no_validation")
    else:
        notes.append("clv.note.auto_bic_short_history")
    if compare is not None and split_at is not None:
        cal, _ = split_at
        progress.stage("progress.clv_validate")
        split = calibration_and_holdout(con, calibration_end=cal,
                                        observation_end=summary.observation_end, unit=unit,
                                        source=source)
        comparison = compare(split, con=con, source=source, penalizer_coef=penalizer_coef)
        selection = {"method": "holdout", "calibration_end": cal.isoformat(),
                     "duration_holdout": split.duration_holdout, "best": comparison.best}
        progress.stage("progress.clv_fit")
        model = fit_purchase_model(comparison.best, summary, penalizer_coef=penalizer_coef)
        return comparison.best, model, selection, comparison
    progress.stage("progress.clv_fit")
    best, fitted, candidates = choose_by_bic(summary, penalizer_coef=penalizer_coef)
    return best, fitted[best], {"method": "bic", "candidates": candidates, "best": best}, None


# --- predictions ------------------------------------------------------------------------------


def discounted_purchases(model: Any, frequency, recency, T, *, horizon: float,
                         period_length: float, discount_rate: float
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases over the horizon and their discounted sum, per history row.

    The horizon is cut into periods of ``period_length`` (the last one shorter if it does not
    divide the horizon); purchases expected in period ``i`` are discounted by
    ``(1 + discount_rate) ** i`` — the stream of
    :meth:`GammaGammaModel.customer_lifetime_value`, without the spend factor (CLV is linear in
    the expected spend, so the stream is computed once per distinct history).

    Returns
    -------
    expected : ndarray
        Expected purchases in ``(T, T + horizon]``.
    discounted : ndarray
        ``sum_i (E[X(t_i)] - E[X(t_{i-1})]) / (1 + d)^i``.
    """
    n_periods = math.ceil(horizon / period_length - 1e-9)
    discrete = getattr(model, "model_name", None) in DISCRETE_TIME
    previous = np.zeros(len(frequency))
    discounted = np.zeros(len(frequency))
    for i in range(1, n_periods + 1):
        t = min(i * period_length, horizon)
        if discrete:  # discrete-time models predict whole periods only
            t = float(round(t))
        cumulative = model.conditional_expected_number_of_purchases_up_to_time(
            t, frequency, recency, T)
        discounted += (cumulative - previous) / (1 + discount_rate) ** i
        previous = cumulative
    return previous, discounted


def expected_spend(spend: GammaGammaModel | None, frame: pd.DataFrame) -> np.ndarray:
    """Expected mean spend per purchase: Gamma-Gamma (population mean for one-time buyers),
    or without a spend model the observed repeat mean (mean of repeat buyers for the others)."""
    freq = frame["frequency"].to_numpy(dtype=float)
    monetary = frame["monetary_value"].to_numpy(dtype=float)
    if spend is not None:
        return spend.conditional_expected_average_profit(freq, monetary)
    repeat = freq > 0
    fallback = float(monetary[repeat].mean()) if repeat.any() else 0.0
    return np.where(repeat, monetary, fallback)


def score_frame(model: Any, spend: GammaGammaModel | None, frame: pd.DataFrame, *,
                horizon: int, period_length: float, discount_rate: float, margin: float
                ) -> pd.DataFrame:
    """Per-customer scores and value tiers from fitted models (vectorised; see module doc)."""
    histories = frame[["frequency", "recency", "T"]].to_numpy(dtype=float)
    unique, inverse = np.unique(histories, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    f, r, big_t = unique[:, 0], unique[:, 1], unique[:, 2]
    p_alive = model.conditional_probability_alive(f, r, big_t)
    expected, discounted = discounted_purchases(model, f, r, big_t, horizon=horizon,
                                                period_length=period_length,
                                                discount_rate=discount_rate)
    # Probability of at least one purchase within the horizon (1 - P(X = 0 | history)).
    p_purchase = 1.0 - probability_no_purchase(model, horizon, f, r, big_t)
    spend_each = expected_spend(spend, frame)
    clv = margin * spend_each * discounted[inverse]
    out = pd.DataFrame({
        "customer_id": frame["customer_id"].astype(str).to_numpy(),
        "frequency": frame["frequency"].to_numpy(dtype=np.int64),
        "recency": histories[:, 1], "T": histories[:, 2],
        "monetary_value": frame["monetary_value"].to_numpy(dtype=float),
        "p_alive": np.clip(p_alive[inverse], 0.0, 1.0),
        "expected_purchases": np.maximum(expected[inverse], 0.0),
        "p_purchase": np.clip(p_purchase[inverse], 0.0, 1.0),
        "expected_spend": spend_each, "clv": np.maximum(clv, 0.0),
    })
    # Rank 1 = highest CLV; ties keep customer_id order (the summary is sorted by it), so
    # tiers hold exactly 20/30/30/20 % of the customers.
    order = np.argsort(-out["clv"].to_numpy(), kind="stable")
    rank = np.empty(len(out), dtype=np.int64)
    rank[order] = np.arange(1, len(out) + 1)
    out["value_rank"] = rank
    position = (rank - 1) / max(len(out), 1)
    out["value_tier"] = np.select([position < bound for _, bound in TIERS[:-1]],
                                  [name for name, _ in TIERS[:-1]], TIERS[-1][0])
    return out[list(SCORE_COLUMNS)]


def one_time_note(model_name: str) -> str:
    """i18n key stating what ``model_name`` assumes about customers without repeat purchases."""
    return "clv.one_time.bgnbd" if model_name == "bgnbd" else "clv.one_time.can_drop_out"


# --- the whole step ---------------------------------------------------------------------------


def score_customers(con: duckdb.DuckDBPyConnection, *, model: str = "auto",
                    unit: str = "weeks", as_of: str | date | None = None, horizon: int = 52,
                    period_length: float | None = None, discount_rate: float = 0.0,
                    margin: float = 1.0, penalizer_coef: float = 0.0,
                    spend_model: str | None = "gamma_gamma", source: str = "transactions",
                    progress: Progress = NO_PROGRESS) -> ClvResult:
    """Fit a purchase model (and Gamma-Gamma) and score every identified customer.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding ``source`` (clean transactions).
    model : str, default "auto"
        A registry name (``bgnbd``, ``mbgnbd``, ``pareto_nbd``, ``bgbb``) or ``"auto"``:
        compare the available models on a calibration/holdout split when the history holds
        two windows of ``max(horizon, one quarter)``, else pick the lowest BIC among the
        continuous-time models; a collapsed BG/NBD fit (every P(alive) = 1) is replaced by
        MBG/NBD when available. The chosen model is refitted on the full history.
    unit : {"days", "weeks", "months"}, default "weeks"
        Time unit of the summary, the horizon and the period length.
    as_of : str or date, optional
        Exclusive end of the history (default: the day after the last purchase).
    horizon : int, default 52
        Prediction horizon, in units.
    period_length : float, optional
        Length of a discounting period in units (default 1 unit).
    discount_rate : float, default 0.0
        Discount rate per period, in ``[0, 1)``.
    margin : float, default 1.0
        Share of spend kept as profit, in ``(0, 1]``.
    penalizer_coef : float, default 0.0
        L2 penalty of the purchase models (Gamma-Gamma is always fitted unpenalised).
    spend_model : {"gamma_gamma", None}, default "gamma_gamma"
        None uses each customer's observed mean repeat spend.
    source : str, default "transactions"
        Table of clean transactions.
    progress : Progress, optional

    Returns
    -------
    ClvResult
        Models, per-customer scores with tiers, diagnostics and the model comparison.

    Raises
    ------
    InputError
        A bad option, or no purchases in the window.
    FitError
        No usable fit.
    """
    length = check_options(model=model, unit=unit, horizon=horizon, period_length=period_length,
                           discount_rate=discount_rate, margin=margin,
                           penalizer_coef=penalizer_coef, spend_model=spend_model)
    progress.stage("progress.clv_summary")
    summary = rfm_summary(con, source=source, as_of=as_of, unit=unit)
    notes: list[str] = []
    comparison = None
    if model == "auto":
        name, fitted, selection, comparison = _select_auto(
            con, summary, unit=unit, horizon=horizon, penalizer_coef=penalizer_coef,
            source=source, notes=notes, progress=progress)
        if collapsed(fitted):
            if "mbgnbd" in available_purchase_models():
                notes.append("clv.note.bgnbd_collapsed_mbgnbd")
                name = "mbgnbd"
                fitted = fit_purchase_model(name, summary, penalizer_coef=penalizer_coef)
            else:
                notes.append("clv.note.bgnbd_collapsed")
    else:
        progress.stage("progress.clv_fit")
        name = model
        fitted = fit_purchase_model(name, summary, penalizer_coef=penalizer_coef)
        selection = {"method": "fixed", "best": name}
        if collapsed(fitted):
            notes.append("clv.note.bgnbd_collapsed")
    selection["requested"] = model
    spend = None
    if spend_model == "gamma_gamma":
        # The penalty steadies the purchase model; Gamma-Gamma is fitted unpenalised (its v is
        # in currency units, where an L2 penalty would bias the spend towards zero).
        spend = fit_spend_model(summary.frame)
        if spend.independence_suspect_:
            notes.append("clv.note.gg_independence_suspect")
    progress.stage("progress.clv_score")
    scores = score_frame(fitted, spend, summary.frame, horizon=horizon, period_length=length,
                         discount_rate=discount_rate, margin=margin)
    if len(scores) and float(scores["p_alive"].min()) > NO_DROPOUT_P_ALIVE:
        # Whatever the model, a fit that keeps everyone alive cannot rank churn risk: say so.
        notes.append("clv.note.no_dropout_detected")
    diagnostics = {
        "gg_correlation": None if spend is None else spend.frequency_spend_correlation_,
        "gg_independence_suspect": None if spend is None else bool(spend.independence_suspect_),
        "notes": notes, "one_time_note": one_time_note(name), "selection": selection,
    }
    return ClvResult(name, spend_model, unit, summary.observation_end, int(horizon), length,
                     float(discount_rate), float(margin), fitted, spend, scores, diagnostics,
                     comparison)


def rebuild_purchase_model(name: str, params: Mapping[str, float], *,
                           se: Mapping[str, float] | None = None,
                           log_likelihood: float | None = None,
                           n_customers: float | None = None) -> Any:
    """A purchase model ready to predict, from stored parameters (no refit).

    The learned attributes are set on a fresh instance, as ``fit`` would leave them; the fit
    statistics are those of the stored fit.
    """
    model = purchase_model_class(name)()
    model.params_ = {k: float(v) for k, v in params.items()}
    model.se_ = {k: (None if v is None else float(v)) for k, v in (se or {}).items()}
    model.log_likelihood_ = float("nan") if log_likelihood is None else float(log_likelihood)
    model.n_customers_ = float("nan") if n_customers is None else float(n_customers)
    return model


def rebuild_spend_model(params: Mapping[str, float] | None) -> GammaGammaModel | None:
    """A Gamma-Gamma model ready to predict, from stored parameters (None stays None)."""
    if not params:
        return None
    model = GammaGammaModel()
    model.params_ = {k: float(v) for k, v in params.items()}
    return model


def rescore(con: duckdb.DuckDBPyConnection, *, purchase_model: Any,
            spend_params: Mapping[str, float] | None, unit: str,
            as_of: date, horizon: int, period_length: float | None, discount_rate: float,
            margin: float, diagnostics: Mapping[str, Any] | None = None,
            source: str = "transactions", progress: Progress = NO_PROGRESS) -> ClvResult:
    """Score customers with a rebuilt model (new horizon, margin, discount or date, no refit).

    ``purchase_model`` comes from :func:`rebuild_purchase_model`.
    """
    name = purchase_model.model_name
    length = check_options(model=name, unit=unit, horizon=horizon,
                           period_length=period_length, discount_rate=discount_rate,
                           margin=margin, penalizer_coef=0.0,
                           spend_model="gamma_gamma" if spend_params else None)
    progress.stage("progress.clv_summary")
    summary = rfm_summary(con, source=source, as_of=as_of, unit=unit)
    model = purchase_model
    spend = rebuild_spend_model(spend_params)
    progress.stage("progress.clv_score")
    scores = score_frame(model, spend, summary.frame, horizon=horizon, period_length=length,
                         discount_rate=discount_rate, margin=margin)
    diag = dict(diagnostics or {})
    diag.setdefault("notes", [])
    diag["one_time_note"] = one_time_note(name)
    return ClvResult(name, "gamma_gamma" if spend else None, unit,
                     summary.observation_end, int(horizon), length, float(discount_rate),
                     float(margin), model, spend, scores, diag)


__all__ = ["ClvResult", "check_options", "choose_by_bic", "collapsed",
           "discounted_purchases", "expected_spend", "fit_purchase_model", "fit_spend_model",
           "holdout_split_dates", "one_time_note", "rebuild_purchase_model",
           "rebuild_spend_model", "rescore", "score_customers", "score_frame", "tier_summary"]
