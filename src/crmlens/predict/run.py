"""A whole churn (or response) prediction step: frame, comparison, final model, scores.

This is the one place that strings the parts of :mod:`crmlens.predict` together, so the
workspace verbs, the ``crmlens run`` stage and the benchmark do exactly the same thing:

1. the training frame: point-in-time features at rolling cutoffs with labels from the window
   after each (transactions mode), or a labelled customers table / file;
2. the cross-validated comparison of the model families against the naive baseline (out of
   time for transactions, stratified folds for labels), with the leakage scan;
3. the best family refitted on all rows (calibrated), its permutation importance on held-out
   rows, and the scores of the latest data with risk bands and per-customer factors;
4. in transactions mode, the expected days to the next order as well.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmlens.errors import InputError
from crmlens.progress import NO_PROGRESS, Progress

log = logging.getLogger(__name__)

# Risk bands on the calibrated probability: below the first bound "low", from the second
# "high". Absolute bounds (not quantiles) so a band means the same across runs and data.
DEFAULT_BANDS = (0.3, 0.6)
BAND_NAMES = ("low", "medium", "high")
# Per-customer factors are worked out for at most this many customers (the riskiest first):
# each factor costs one prediction per feature over the rows it explains.
EXPLAIN_LIMIT = 200_000
TOP_FACTORS = 3
CURVE_KINDS = ("roc", "pr", "lift", "calibration")
TARGETS = ("churn", "buy_next")


@dataclass
class ChurnResult:
    """What a training or scoring step produced (and the workspace stores).

    Attributes
    ----------
    mode : {"transactions", "labelled"}
    target : str
        ``churn``/``buy_next`` (transactions) or the labelled column.
    best_model : str
        The family chosen by the comparison (the model that scored).
    grade : str or None
        Best model against the naive baseline (``predict.grade.<code>``).
    comparison : list of dict
        One row per family and the baseline (metrics, params).
    scores : pandas.DataFrame
        customer_id, probability, risk_band, risk_rank, observed, expected_days_to_next.
    factors : pandas.DataFrame
        customer_id, rank, feature, value, reference, effect.
    importance : pandas.DataFrame
        feature, importance, std, rank.
    curves : pandas.DataFrame
        model, kind, x, y, n.
    """

    mode: str
    target: str
    best_model: str
    as_of: date | None
    window_days: int | None
    cutoffs: list[date]
    positive: str | None
    grade: str | None
    threshold: float | None
    positive_rate: float
    n_train: int
    features: list[str]
    labels: dict[str, str]
    comparison: list[dict[str, Any]]
    leakage: list[dict[str, Any]]
    scores: pd.DataFrame
    factors: pd.DataFrame
    importance: pd.DataFrame
    curves: pd.DataFrame
    model: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None

    def run_row(self) -> dict[str, Any]:
        """The ``churn_runs`` columns of this result."""
        return {"mode": self.mode, "target": self.target, "positive": self.positive,
                "window_days": self.window_days,
                "cutoffs": [c.isoformat() for c in self.cutoffs],
                "as_of": self.as_of, "best_model": self.best_model, "grade": self.grade,
                "threshold": self.threshold, "positive_rate": self.positive_rate,
                "n_train": self.n_train, "n_scored": int(len(self.scores)),
                "features": [{"name": f, "label": self.labels.get(f, f)}
                             for f in self.features],
                "leakage": self.leakage, "metrics": self.metrics, "settings": self.settings}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (no per-customer rows)."""
        bands = self.scores["risk_band"].value_counts().to_dict() if len(self.scores) else {}
        return {"run_id": self.run_id, **self.run_row(),
                "as_of": self.as_of.isoformat() if self.as_of else None,
                "comparison": self.comparison,
                "importance": self.importance.head(15).to_dict("records"),
                "bands": {b: int(bands.get(b, 0)) for b in BAND_NAMES},
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def risk_bands(probability: np.ndarray, bands: Sequence[float] = DEFAULT_BANDS) -> np.ndarray:
    """``low``/``medium``/``high`` for each probability (bounds: ``[low, high)``)."""
    lo, hi = float(bands[0]), float(bands[1])
    if not 0.0 < lo < hi < 1.0:
        raise InputError("error.churn_bad_bands", low=lo, high=hi)
    idx = (np.asarray(probability) >= lo).astype(np.int8) + (np.asarray(probability) >= hi)
    return np.asarray(BAND_NAMES, dtype=object)[idx]


def score_frame(model: Any, X: pd.DataFrame, customer_id: np.ndarray, *,
                bands: Sequence[float] = DEFAULT_BANDS) -> pd.DataFrame:
    """Probabilities, risk bands and ranks (1 = riskiest) of the rows of ``X``."""
    proba = model.predict_proba(X)[:, 1] if len(X) else np.empty(0)
    order = np.argsort(-proba, kind="stable")
    rank = np.empty(len(proba), dtype=np.int64)
    rank[order] = np.arange(1, len(proba) + 1)
    return pd.DataFrame({"customer_id": np.asarray(customer_id).astype(str),
                         "probability": proba, "risk_band": risk_bands(proba, bands),
                         "risk_rank": rank, "observed": pd.array([None] * len(proba),
                                                                 dtype="boolean"),
                         "expected_days_to_next": np.full(len(proba), np.nan)})


def explain_scores(model: Any, X: pd.DataFrame, scores: pd.DataFrame, *,
                   top: int = TOP_FACTORS, limit: int | None = EXPLAIN_LIMIT,
                   reference: pd.Series | None = None) -> pd.DataFrame:
    """Per-customer factors for the riskiest ``limit`` customers (all when None)."""
    from crmlens.predict.explain import customer_factors

    rows = np.argsort(scores["risk_rank"].to_numpy(), kind="stable")
    if limit is not None:
        rows = rows[:limit]
    if len(rows) == 0:
        return pd.DataFrame(columns=["customer_id", "rank", "feature", "value", "reference",
                                     "effect"])
    sub = X.iloc[rows].reset_index(drop=True)
    factors = customer_factors(model, sub, top=top, reference=reference)
    ids = scores["customer_id"].to_numpy()[rows]
    factors = factors.assign(customer_id=ids[factors["row"].to_numpy()])
    return factors[["customer_id", "rank", "feature", "value", "reference", "effect"]]


def _curves(comparison: Any, models: Sequence[str]) -> pd.DataFrame:
    from crmlens.predict.metrics import curve_points

    preds = comparison.predictions
    parts = []
    for name in models:
        if name not in preds.columns:
            continue
        ok = preds[name].notna().to_numpy()
        y, p = preds["y_true"].to_numpy()[ok], preds[name].to_numpy()[ok]
        if len(np.unique(y)) < 2:
            continue
        for kind in CURVE_KINDS:
            pts = curve_points(y, p, kind)
            if "n" not in pts.columns:
                pts = pts.assign(n=np.nan)
            parts.append(pts[["x", "y", "n"]].assign(model=name, kind=kind))
    if not parts:
        return pd.DataFrame(columns=["model", "kind", "x", "y", "n"])
    return pd.concat(parts, ignore_index=True)[["model", "kind", "x", "y", "n"]]


def _comparison_rows(comparison: Any) -> list[dict[str, Any]]:
    rows = []
    for r in comparison.table.to_dict("records"):
        name = str(r["model"])
        rows.append({**r, "model": name, "is_best": name == comparison.best,
                     "is_baseline": name == "baseline"})
    return rows


def _importance(frame: Any, name: str, params: dict[str, Any], *, random_state: int
                ) -> pd.DataFrame:
    """Permutation importance on held-out rows: fit on the last split's train part."""
    from crmlens.predict.explain import permutation_importance_table
    from crmlens.predict.models import make_model

    train, test, _ = frame.splits[-1]
    model = make_model(name, numeric=frame.numeric, categorical=frame.categorical,
                       params=params, random_state=random_state)
    model.fit(frame.X.iloc[train], frame.y[train])
    table = permutation_importance_table(model, frame.X.iloc[test], frame.y[test],
                                         random_state=random_state)
    table = table.reset_index(drop=True)
    return table.assign(rank=np.arange(1, len(table) + 1))[
        ["feature", "importance", "std", "rank"]]


def _compare_and_fit(frame: Any, *, models: Sequence[str], baseline: Any,
                     time_budget: float | None, search: bool, random_state: int,
                     progress: Progress) -> tuple[Any, Any, dict[str, float]]:
    from crmlens.predict.evaluate import compare_models, fit_final

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    progress.stage("progress.churn_compare")
    comparison = compare_models(frame.X, frame.y, frame.splits, numeric=frame.numeric,
                                categorical=frame.categorical, models=models,
                                baseline=baseline, time_budget=time_budget, search=search,
                                random_state=random_state, progress=progress)
    seconds["compare"] = time.perf_counter() - t0
    best_params = _best_params(comparison)
    t0 = time.perf_counter()
    progress.stage("progress.churn_fit")
    preds = comparison.predictions
    # calibrate on the comparison's out-of-sample predictions: one fit instead of four
    final = fit_final(frame.X, frame.y, name=comparison.best, params=best_params,
                      numeric=frame.numeric, categorical=frame.categorical,
                      held_out=(preds["y_true"].to_numpy(), preds[comparison.best].to_numpy()),
                      random_state=random_state)
    seconds["fit_final"] = time.perf_counter() - t0
    return comparison, final, seconds


def _best_params(comparison: Any) -> dict[str, Any]:
    table = comparison.table
    row = table[table["model"] == comparison.best]
    params = row["params"].iloc[0] if len(row) and "params" in row else None
    return dict(params) if isinstance(params, dict) else {}


def train_churn(con: duckdb.DuckDBPyConnection, *, target: str = "churn",
                window_days: int = 90, step_days: int = 30, n_cutoffs: int | None = 6,
                models: Sequence[str] | None = None, time_budget: float | None = 120.0,
                search: bool = True, bands: Sequence[float] = DEFAULT_BANDS,
                explain_limit: int | None = EXPLAIN_LIMIT, random_state: int = 0,
                progress: Progress = NO_PROGRESS) -> ChurnResult:
    """Train on rolling cutoffs of the workspace transactions and score the latest data.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store (``transactions``; ``customers``/``events`` when present).
    target : {"churn", "buy_next"}, default "churn"
        ``churn``: no purchase in the ``window_days`` after a cutoff; ``buy_next``: a purchase
        within them ("will buy in the next N days").
    window_days : int, default 90
        The label window after each cutoff.
    step_days : int, default 30
        Days between rolling cutoffs.
    n_cutoffs : int or None, default 6
        How many cutoffs to train on (None: every one the history allows).
    models : sequence of str, optional
        Model families to compare (default: all of
        :data:`crmlens.predict.models.MODEL_FAMILIES`).
    time_budget : float or None, default 120
        Seconds for the hyperparameter search over all families (None: no limit).
    search : bool, default True
        Whether to search hyperparameters at all (False: each family's defaults).
    bands : (float, float), default (0.3, 0.6)
        Probability bounds of the medium and high risk bands.
    explain_limit : int or None, default 200000
        Per-customer factors for at most this many of the riskiest customers.
    random_state : int, default 0
    progress : Progress, optional

    Returns
    -------
    ChurnResult
    """
    from crmlens.predict.dataset import build_scoring_frame, build_training_frame
    from crmlens.predict.evaluate import NaiveBaseline
    from crmlens.predict.models import MODEL_FAMILIES

    if target not in TARGETS:
        raise InputError("error.churn_bad_target", target=target, allowed=", ".join(TARGETS))
    risk_bands(np.array([0.5]), bands)  # bad bands fail before any work
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    progress.stage("progress.churn_frame")
    frame = build_training_frame(con, target=target, window_days=window_days,
                                 step_days=step_days, n_cutoffs=n_cutoffs, progress=progress)
    seconds["frame"] = time.perf_counter() - t0
    _check_two_classes(frame)
    rule = frame.baseline_rule or {}
    baseline = NaiveBaseline(feature=rule.get("feature"), threshold=rule.get("threshold"))
    comparison, final, more = _compare_and_fit(
        frame, models=list(models or MODEL_FAMILIES), baseline=baseline,
        time_budget=time_budget, search=search, random_state=random_state, progress=progress)
    seconds.update(more)

    t0 = time.perf_counter()
    progress.stage("progress.churn_score")
    X_now, ids, as_of = build_scoring_frame(con, columns=list(frame.X.columns),
                                            progress=progress)
    scores = score_frame(final, X_now, ids, bands=bands)
    latest = frame.cutoffs[-1] if frame.cutoffs else None
    if latest is not None:
        scores["observed"] = _observed(frame, latest, scores["customer_id"])
    seconds["score"] = time.perf_counter() - t0

    metrics: dict[str, Any] = {}
    t0 = time.perf_counter()
    next_order = _days_to_next(con, frame, X_now, window_days=window_days,
                               random_state=random_state)
    if next_order is not None:
        model_days, metrics["days_to_next"] = next_order
        scores["expected_days_to_next"] = np.asarray(model_days.predict(X_now), dtype=float)
    seconds["days_to_next"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress.stage("progress.churn_explain")
    importance = _importance(frame, comparison.best, _best_params(comparison),
                             random_state=random_state)
    factors = explain_scores(final, X_now, scores, limit=explain_limit)
    seconds["explain"] = time.perf_counter() - t0
    return ChurnResult(
        mode="transactions", target=target, best_model=comparison.best, as_of=as_of,
        window_days=window_days, cutoffs=list(frame.cutoffs), positive=None,
        grade=comparison.grade, threshold=_float(comparison.threshold),
        positive_rate=float(np.mean(frame.y)), n_train=int(len(frame.y)),
        features=list(frame.X.columns), labels=dict(frame.labels),
        comparison=_comparison_rows(comparison), leakage=list(comparison.leakage),
        scores=scores, factors=factors, importance=importance,
        curves=_curves(comparison, [comparison.best, "baseline"]), model=final,
        metrics=metrics, seconds=seconds,
        settings={"step_days": step_days, "n_cutoffs": n_cutoffs,
                  "models": list(models or MODEL_FAMILIES), "time_budget": time_budget,
                  "search": search, "bands": list(bands), "random_state": random_state,
                  "splits": [s[2] for s in frame.splits]})


def train_labelled(con: duckdb.DuckDBPyConnection, *, target: str,
                   source: str | Path | None = None, positive: str | None = None,
                   id_column: str | None = None, exclude: Sequence[str] = (),
                   models: Sequence[str] | None = None, time_budget: float | None = 120.0,
                   search: bool = True, n_folds: int = 5, bands: Sequence[float] = DEFAULT_BANDS,
                   explain_limit: int | None = EXPLAIN_LIMIT, random_state: int = 0,
                   progress: Progress = NO_PROGRESS) -> ChurnResult:
    """Train on a yes/no column of the customers table (or of a file) and score its rows.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store (``customers`` when ``source`` is None).
    target : str
        The label column (churned, subscribed, responded ...).
    source : str or Path, optional
        A file to read instead of the ``customers`` table.
    positive : str, optional
        The value counted as yes (found automatically for yes/no, true/false, 1/0, 是/否).
    id_column : str, optional
        The customer id column of ``source`` (default: detected, else row numbers).
    exclude : sequence of str
        Columns not to use as features (for example one known only after the outcome).
    models, time_budget, search, bands, explain_limit, random_state, progress
        As in :func:`train_churn`.
    n_folds : int, default 5
        Stratified cross-validation folds.

    Returns
    -------
    ChurnResult
        Scores for every row of the source (in-sample for the final model; the comparison
        table is out of fold).
    """
    from crmlens.predict.dataset import build_labelled_frame
    from crmlens.predict.evaluate import NaiveBaseline
    from crmlens.predict.models import MODEL_FAMILIES

    risk_bands(np.array([0.5]), bands)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    progress.stage("progress.churn_frame")
    frame = build_labelled_frame(con, target=target, source=source, positive=positive,
                                 id_column=id_column, exclude=exclude, n_folds=n_folds,
                                 random_state=random_state)
    seconds["frame"] = time.perf_counter() - t0
    _check_two_classes(frame)
    comparison, final, more = _compare_and_fit(
        frame, models=list(models or MODEL_FAMILIES), baseline=NaiveBaseline(),
        time_budget=time_budget, search=search, random_state=random_state, progress=progress)
    seconds.update(more)
    t0 = time.perf_counter()
    scores = score_frame(final, frame.X, frame.customer_id, bands=bands)
    scores["observed"] = pd.array(np.asarray(frame.y).astype(bool), dtype="boolean")
    seconds["score"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    progress.stage("progress.churn_explain")
    importance = _importance(frame, comparison.best, _best_params(comparison),
                             random_state=random_state)
    factors = explain_scores(final, frame.X, scores, limit=explain_limit)
    seconds["explain"] = time.perf_counter() - t0
    return ChurnResult(
        mode="labelled", target=target, best_model=comparison.best, as_of=None,
        window_days=None, cutoffs=[], positive=frame.positive, grade=comparison.grade,
        threshold=_float(comparison.threshold), positive_rate=float(np.mean(frame.y)),
        n_train=int(len(frame.y)), features=list(frame.X.columns), labels=dict(frame.labels),
        comparison=_comparison_rows(comparison), leakage=list(comparison.leakage),
        scores=scores, factors=factors, importance=importance,
        curves=_curves(comparison, [comparison.best, "baseline"]), model=final,
        seconds=seconds,
        settings={"source": str(source) if source else None, "id_column": id_column,
                  "exclude": list(exclude), "n_folds": n_folds,
                  "models": list(models or MODEL_FAMILIES), "time_budget": time_budget,
                  "search": search, "bands": list(bands), "random_state": random_state})


def rescore(con: duckdb.DuckDBPyConnection, model: Any, *, features: Sequence[str],
            as_of: date | str | None = None, bands: Sequence[float] = DEFAULT_BANDS,
            explain_limit: int | None = EXPLAIN_LIMIT, progress: Progress = NO_PROGRESS
            ) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    """Score the customers as of a date with an already fitted model (no refit).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store (``transactions``).
    model : fitted classifier
        A model from :func:`train_churn` (``ChurnResult.model``).
    features : sequence of str
        The columns it was trained on (``ChurnResult.features``).
    as_of : date or str, optional
        Features as of this date (default: the day after the last transaction).
    bands : (float, float), default (0.3, 0.6)
        Probability bounds of the medium and high risk bands.
    explain_limit : int or None, default 200000
        Per-customer factors for at most this many of the riskiest customers.
    progress : Progress, optional

    Returns
    -------
    scores : pandas.DataFrame
        As :attr:`ChurnResult.scores` (``observed`` missing: the future is unknown).
    factors : pandas.DataFrame
        As :attr:`ChurnResult.factors`.
    as_of : datetime.date
        The date the features describe.
    """
    from crmlens.predict.dataset import build_scoring_frame

    X_now, ids, day = build_scoring_frame(con, columns=list(features), as_of=as_of,
                                          progress=progress)
    scores = score_frame(model, X_now, ids, bands=bands)
    factors = explain_scores(model, X_now, scores, limit=explain_limit)
    return scores, factors, day


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def _check_two_classes(frame: Any) -> None:
    y = np.asarray(frame.y)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise InputError("error.churn_one_class", target=frame.target, rows=len(y),
                         value=int(positives > 0))


def _observed(frame: Any, cutoff: date, customer_ids: pd.Series) -> pd.Series:
    """The label each scored customer had at ``cutoff`` (missing when not in its frame)."""
    at = np.asarray(frame.cutoff).astype("datetime64[D]") == np.datetime64(cutoff, "D")
    labels = pd.Series(np.asarray(frame.y)[at].astype(bool),
                       index=np.asarray(frame.customer_id)[at].astype(str))
    labels = labels[~labels.index.duplicated()]
    return pd.Series(customer_ids.map(labels).to_numpy(), dtype="boolean")


def _days_to_next(con: duckdb.DuckDBPyConnection, frame: Any, X_now: pd.DataFrame, *,
                  window_days: int, random_state: int) -> tuple[Any, dict[str, Any]] | None:
    """The expected-days-to-next-order model and its out-of-time metrics, when it applies."""
    from crmlens.predict.next_order import fit_days_to_next

    try:
        result = fit_days_to_next(con, frame=frame, window_days=window_days,
                                  random_state=random_state)
    except InputError as exc:
        log.info("days to next order skipped: %s", exc.message("en"))
        return None
    return result.model, result.metrics
