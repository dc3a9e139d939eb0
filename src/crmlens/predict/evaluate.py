"""Cross-validated comparison of the model families against the naive baseline, and the final fit.

:func:`compare_models` is what a sceptical analyst would do by hand:

1. **Search** (optional, time-budgeted): for each family, the defaults and then random draws
   from :func:`~crmlens.predict.models.search_space` are scored (ROC AUC) on a stratified
   hold-out of the *training* rows of the last split (at most :data:`SEARCH_ROWS` rows), until
   the family's share of ``time_budget`` is spent. The test rows are never seen by the search.
2. **Evaluation**: each family, with its chosen settings, is refitted on the training rows of
   every split and predicts the split's test rows (out of time for transactions, out of fold
   for labelled data). Metrics are computed on the pooled out-of-sample predictions
   (:func:`~crmlens.predict.metrics.classification_metrics`), with the spread of the ROC AUC
   over splits. A family that fails is reported with its error; the others go on.
3. **Baseline and grade**: :class:`~crmlens.predict.models.NaiveBaseline` is evaluated on the
   same splits; the grade says whether the best family beats it by a margin worth having.
4. **Leakage scan**: :func:`~crmlens.predict.leakage.leakage_scan` on the training rows.

:func:`fit_final` refits the chosen family on every row and calibrates its probabilities on
cross-fitted predictions (Platt's sigmoid by default).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import ParameterGrid, ParameterSampler, StratifiedKFold, train_test_split

from crmlens.errors import InputError
from crmlens.predict.leakage import leakage_scan
from crmlens.predict.metrics import best_f1_threshold, classification_metrics
from crmlens.predict.models import (
    MODEL_FAMILIES,
    NaiveBaseline,
    make_model,
    search_space,
    stratified_subsample,
)
from crmlens.progress import NO_PROGRESS, Progress

__all__ = ["GRADES", "Comparison", "NaiveBaseline", "PlattCalibrated", "compare_models",
           "fit_final", "grade"]

log = logging.getLogger(__name__)

# Rows of the search hold-out (train + validation), per family.
SEARCH_ROWS = 60_000
# Rows the leakage scan looks at (single-feature AUCs are cheap; memory is the limit).
LEAKAGE_ROWS = 300_000
# ROC AUC gains over the baseline: from CLEAR "clearly better", from SOME "better".
CLEAR_GAIN, SOME_GAIN = 0.05, 0.01
GRADES = ("clearly_better", "better", "no_better")


@dataclass
class Comparison:
    """What :func:`compare_models` found.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per family and ``baseline`` (last): ``model``, the metrics of
        :func:`~crmlens.predict.metrics.classification_metrics`, ``roc_auc_std`` (over
        splits), ``fit_seconds`` (mean per split), ``n_train`` (rows of the last split's
        training part), ``n_test`` (pooled test rows), ``params`` (dict of chosen settings),
        ``n_tried`` (settings tried by the search), ``error`` (None, or why it failed).
    predictions : pandas.DataFrame
        ``row`` (position in X), ``split``, ``y_true`` and one column of out-of-sample
        probabilities per family and the baseline.
    best : str
        The family with the highest ROC AUC (ties: lower log loss).
    grade : str
        One of :data:`GRADES`.
    baseline_auc, best_auc : float
    threshold : float
        The decision threshold of the metrics at a threshold (the given one, else the best
        model's best-F1 threshold on its out-of-sample predictions).
    leakage : list of dict
        Flagged features (see :func:`~crmlens.predict.leakage.leakage_scan`).
    """

    table: pd.DataFrame
    predictions: pd.DataFrame
    best: str
    grade: str
    best_auc: float
    baseline_auc: float
    threshold: float
    leakage: list[dict[str, Any]] = field(default_factory=list)


def grade(best_auc: float, baseline_auc: float) -> str:
    """``clearly_better`` / ``better`` / ``no_better`` from the ROC AUC gain over the baseline."""
    if not np.isfinite(best_auc):
        return "no_better"
    gain = best_auc - (baseline_auc if np.isfinite(baseline_auc) else 0.5)
    if gain >= CLEAR_GAIN:
        return "clearly_better"
    if gain >= SOME_GAIN:
        return "better"
    return "no_better"


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def _search(name: str, X: pd.DataFrame, y: np.ndarray, rows: np.ndarray, *,
            numeric: list[str], categorical: list[str], budget: float,
            random_state: int) -> tuple[dict[str, Any], int]:
    """The settings with the best hold-out ROC AUC found within ``budget`` seconds."""
    start = time.perf_counter()
    sub = rows[stratified_subsample(y[rows], SEARCH_ROWS, random_state=random_state)]
    if np.bincount(y[sub], minlength=2).min() < 4:
        return {}, 0
    fit_rows, val_rows = train_test_split(sub, test_size=0.25, stratify=y[sub],
                                          random_state=random_state)
    space = search_space(name)
    # every setting is a list: sample the grid without replacement, in a seeded order
    draws = ParameterSampler(space, n_iter=len(ParameterGrid(space)), random_state=random_state)
    best_params: dict[str, Any] = {}
    best_auc = -np.inf
    tried = 0
    for params in [{}, *draws]:
        if tried and time.perf_counter() - start > budget:
            break
        tried += 1
        try:
            model = make_model(name, numeric=numeric, categorical=categorical,
                               params=params, random_state=random_state)
            model.fit(X.iloc[fit_rows], y[fit_rows])
            auc = _auc(y[val_rows], model.predict_proba(X.iloc[val_rows])[:, 1])
        except (ValueError, ArithmeticError) as exc:  # a bad draw; keep searching
            log.info("search %s %s failed: %s", name, params, exc)
            continue
        if auc > best_auc + 1e-4:  # prefer the earlier (default) settings on near ties
            best_auc, best_params = auc, dict(params)
    return best_params, tried


def _evaluate(make, X: pd.DataFrame, y: np.ndarray,
              splits: Sequence[tuple[np.ndarray, np.ndarray, str]]
              ) -> tuple[np.ndarray, list[float], float]:
    """Out-of-sample probabilities of every test row, per-split AUCs, mean fit seconds."""
    proba = np.full(len(y), np.nan)
    aucs, seconds = [], []
    for train, test, _ in splits:
        model = make()
        t0 = time.perf_counter()
        model.fit(X.iloc[train], y[train])
        seconds.append(time.perf_counter() - t0)
        p = model.predict_proba(X.iloc[test])[:, 1]
        proba[test] = p
        aucs.append(_auc(y[test], p))
    return proba, aucs, float(np.mean(seconds)) if seconds else float("nan")


def _metric_row(name: str, y: np.ndarray, proba: np.ndarray, tested: np.ndarray,
                aucs: list[float], seconds: float, threshold: float) -> dict[str, Any]:
    row: dict[str, Any] = {"model": name}
    row.update(classification_metrics(y[tested], proba[tested], threshold=threshold))
    finite = [a for a in aucs if np.isfinite(a)]
    row["roc_auc_std"] = float(np.std(finite)) if len(finite) > 1 else float("nan")
    row["fit_seconds"] = seconds
    return row


def compare_models(X: pd.DataFrame, y, splits: Sequence[tuple[np.ndarray, np.ndarray, str]],
                   *, numeric: Sequence[str], categorical: Sequence[str],
                   models: Sequence[str] = MODEL_FAMILIES, baseline: NaiveBaseline | None = None,
                   time_budget: float | None = 120.0, search: bool = True,
                   threshold: float | None = None, leakage: bool = True,
                   random_state: int = 0, progress: Progress = NO_PROGRESS) -> Comparison:
    """Evaluate model families and the naive baseline on the same out-of-sample splits.

    Parameters
    ----------
    X : pandas.DataFrame
        Features (raw: the pipelines prepare them inside each fold).
    y : array-like of 0/1
        Outcome.
    splits : sequence of (train_idx, test_idx, label)
        Out-of-sample splits (see :mod:`crmlens.predict.dataset`).
    numeric, categorical : sequence of str
        Columns of ``X`` by kind.
    models : sequence of str, default all :data:`~crmlens.predict.models.MODEL_FAMILIES`
    baseline : NaiveBaseline, optional
        The naive forecast to beat (default: the historical positive rate).
    time_budget : float or None, default 120
        Seconds for the hyperparameter search over all families (shared out evenly; time a
        family leaves unused goes to the next). None: no limit is not allowed for a random
        search, so it means 60 seconds per family.
    search : bool, default True
        False: every family with its defaults.
    threshold : float, optional
        Decision threshold of accuracy/precision/recall/F1 (default: the best model's best-F1
        threshold on its out-of-sample predictions, used for every row of the table).
    leakage : bool, default True
        Run the leakage scan.
    random_state : int, default 0
    progress : Progress, optional

    Returns
    -------
    Comparison

    Raises
    ------
    crmlens.errors.InputError
        Unknown family; no family could be trained.

    Examples
    --------
    >>> cmp = compare_models(frame.X, frame.y, frame.splits, numeric=frame.numeric,
    ...                      categorical=frame.categorical, models=["logreg", "hist_gbm"])
    ...                                                                # doctest: +SKIP
    >>> cmp.table[["model", "roc_auc"]]                                # doctest: +SKIP
    """
    from crmlens.predict.models import _check_family

    y = np.asarray(y).astype(np.int64)
    numeric, categorical = list(numeric), list(categorical)
    models = list(dict.fromkeys(models))
    for name in models:
        _check_family(name)
    if not splits:
        raise InputError("error.predict_too_few_rows", n_positive=int(y.sum()),
                         n_negative=int(len(y) - y.sum()))
    tested = np.zeros(len(y), dtype=bool)
    for _, test, _ in splits:
        tested[test] = True
    search_rows = np.asarray(splits[-1][0])
    remaining = (float(time_budget) if time_budget is not None else 60.0 * len(models))

    probas: dict[str, np.ndarray] = {}
    rows: list[dict[str, Any]] = []
    for i, name in enumerate(models):
        progress.stage("progress.predict_model", model=_label(name), i=i + 1, n=len(models))
        t_family = time.perf_counter()
        params: dict[str, Any] = {}
        tried = 0
        try:
            if search:
                share = remaining / (len(models) - i)
                params, tried = _search(name, X, y, search_rows, numeric=numeric,
                                        categorical=categorical, budget=share,
                                        random_state=random_state)
                remaining = max(0.0, remaining - (time.perf_counter() - t_family))

            def make(name=name, params=params):
                return make_model(name, numeric=numeric, categorical=categorical,
                                  params=params, random_state=random_state)

            proba, aucs, seconds = _evaluate(make, X, y, splits)
        except (ValueError, ArithmeticError, MemoryError, InputError) as exc:
            message = exc.message("en") if isinstance(exc, InputError) else str(exc)
            log.warning("model %s failed: %s", name, message)
            rows.append({"model": name, "params": params, "n_tried": tried,
                         "error": message[:500]})
            continue
        probas[name] = proba
        rows.append({"model": name, "params": params, "n_tried": tried, "error": None,
                     "_aucs": aucs, "_seconds": seconds})
    if not probas:
        raise InputError("error.predict_models.no_model_worked",
                         errors="; ".join(f"{r['model']}: {r['error']}" for r in rows))

    base = baseline if baseline is not None else NaiveBaseline()
    from sklearn.base import clone

    base_proba, base_aucs, base_seconds = _evaluate(lambda: clone(base), X, y, splits)
    pooled_auc = {n: _auc(y[tested], p[tested]) for n, p in probas.items()}
    # ties on AUC go to the family with the better probabilities (lower log loss)
    pooled_loss = {n: float(log_loss(y[tested], np.clip(p[tested], 1e-15, 1 - 1e-15),
                                     labels=[0, 1])) for n, p in probas.items()}
    best = max(probas, key=lambda n: (np.nan_to_num(pooled_auc[n], nan=-1.0),
                                      -pooled_loss[n]))
    cut = float(threshold) if threshold is not None else best_f1_threshold(
        y[tested], probas[best][tested])

    table_rows = []
    for r in rows:
        name = r["model"]
        if r["error"] is None:
            out = _metric_row(name, y, probas[name], tested, r["_aucs"], r["_seconds"], cut)
        else:
            out = {"model": name}
        out.update({"params": r["params"], "n_tried": r["n_tried"], "error": r["error"]})
        table_rows.append(out)
    base_row = _metric_row("baseline", y, base_proba, tested, base_aucs, base_seconds, cut)
    base_row.update({"params": {k: v for k, v in base.get_params().items() if v is not None},
                     "n_tried": 0, "error": None})
    table_rows.append(base_row)
    table = pd.DataFrame(table_rows)
    table["n_train"] = int(len(splits[-1][0]))
    table["n_test"] = int(tested.sum())

    predictions = pd.DataFrame({"row": np.flatnonzero(tested), "y_true": y[tested]})
    split_of = np.full(len(y), -1)
    for k, (_, test, _) in enumerate(splits):
        split_of[test] = k
    predictions["split"] = split_of[tested]
    for name, p in probas.items():
        predictions[name] = p[tested]
    predictions["baseline"] = base_proba[tested]

    flagged: list[dict[str, Any]] = []
    if leakage:
        progress.stage("progress.predict_leakage")
        idx = stratified_subsample(y, LEAKAGE_ROWS, random_state=random_state)
        flagged = leakage_scan(X.iloc[idx], y[idx], numeric=numeric, categorical=categorical,
                               random_state=random_state)
    base_auc = float(base_row["roc_auc"])
    log.info("comparison: best %s (AUC %.4f), baseline AUC %.4f", best, pooled_auc[best],
             base_auc)
    return Comparison(table=table, predictions=predictions, best=best,
                      grade=grade(pooled_auc[best], base_auc), best_auc=float(pooled_auc[best]),
                      baseline_auc=base_auc, threshold=cut, leakage=flagged)


def _label(name: str) -> str:
    from crmlens.i18n import t

    return t(f"predict.model.{name}")


def fit_final(X: pd.DataFrame, y, *, name: str, params: Mapping[str, Any] | None = None,
              numeric: Sequence[str], categorical: Sequence[str], calibrate: bool = True,
              method: str = "sigmoid", held_out: tuple[Any, Any] | None = None,
              random_state: int = 0) -> Any:
    """The chosen family refitted on every row, with calibrated probabilities.

    Parameters
    ----------
    X : pandas.DataFrame
    y : array-like of 0/1
    name : str
        Model family.
    params : mapping, optional
        Its settings (from the comparison).
    numeric, categorical : sequence of str
    calibrate : bool, default True
        Calibrate the probabilities on 3-fold cross-fitted predictions; the model that
        predicts is the one fitted on all rows (``ensemble=False``).
    method : {"sigmoid", "isotonic"}, default "sigmoid"
        Platt's sigmoid keeps the model's ranking strictly and moves every probability
        smoothly, so per-customer factors stay visible; isotonic regression is more flexible
        but its flat steps put whole groups at exactly 0 % or 100 % and hide what moves them.
    held_out : (y, proba), optional
        Out-of-sample outcomes and probabilities of this family (the comparison's
        ``predictions``). With them the sigmoid is fitted on these instead of on 3-fold
        cross-fitted predictions, so the model is fitted once instead of four times; for
        out-of-time predictions that also calibrates for the drift between cutoffs.
        Ignored for ``method="isotonic"``.
    random_state : int, default 0

    Returns
    -------
    estimator
        A fitted classifier with ``predict_proba`` taking the raw feature table.
    """
    y = np.asarray(y).astype(np.int64)
    model = make_model(name, numeric=numeric, categorical=categorical, params=params,
                       random_state=random_state)
    smaller = int(np.bincount(y, minlength=2).min())
    if not calibrate or smaller < 3:
        return model.fit(X, y)
    if held_out is not None and method == "sigmoid":
        y_out = np.asarray(held_out[0]).astype(np.int64)
        if 0 < y_out.sum() < len(y_out):
            return PlattCalibrated(model.fit(X, y)).calibrate(y_out, held_out[1])
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=random_state)
    calibrated = CalibratedClassifierCV(model, method=method, cv=folds, ensemble=False)
    return calibrated.fit(X, y)


_LOGIT_CLIP = 1e-6


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    return np.log(p / (1 - p))


class PlattCalibrated:
    """A fitted classifier whose probabilities go through a sigmoid fitted on held-out ones.

    ``p' = 1 / (1 + exp(-(a * logit(p) + b)))`` with ``a``, ``b`` fitted by (nearly
    unpenalised) logistic regression of the held-out outcomes on the logit of the held-out
    probabilities (Platt scaling on the probability scale). ``a`` is kept positive, so the
    ranking of the model is never reversed.

    Parameters
    ----------
    estimator : fitted classifier
        Takes the raw feature table.

    Attributes
    ----------
    a_, b_ : float
        The sigmoid's slope and intercept.
    classes_ : ndarray
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.classes_ = getattr(estimator, "classes_", np.array([0, 1]))

    def calibrate(self, y, proba) -> PlattCalibrated:
        """Fit the sigmoid on held-out outcomes and probabilities of class 1.

        Parameters
        ----------
        y : array-like of 0/1
        proba : array-like of float

        Returns
        -------
        self
        """
        from sklearn.linear_model import LogisticRegression

        z = _logit(proba).reshape(-1, 1)
        fit = LogisticRegression(C=1e6, max_iter=1000).fit(z, np.asarray(y).astype(np.int64))
        self.a_ = max(float(fit.coef_[0, 0]), 1e-6)
        self.b_ = float(fit.intercept_[0])
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities.

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        p = self.estimator.predict_proba(X)[:, 1]
        q = 1.0 / (1.0 + np.exp(-(self.a_ * _logit(p) + self.b_)))
        return np.column_stack([1 - q, q])

    def predict(self, X) -> np.ndarray:
        """The more probable class.

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        ndarray
        """
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]
