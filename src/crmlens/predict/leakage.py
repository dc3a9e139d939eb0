"""A warning for features that predict the outcome suspiciously well on their own.

A feature recorded *after* the outcome (the length of the sales call that ended in a
subscription, a "cancellation reason" field, a last-activity date taken after the label window)
predicts the outcome far better than anything known beforehand. :func:`leakage_scan` measures
each feature alone and flags it when either

1. its single-feature ROC AUC is at least ``threshold`` (default 0.90): one column almost
   decides the outcome, which honest CRM features rarely do; or
2. its single-feature AUC is at least ``min_auc`` (default 0.75) **and** higher than the AUC
   of a model of *all the other features together* plus ``margin`` (default 0.0): one column
   knows more than everything else combined.

Rule 2 is what separates a leak from a merely strong feature. In churn frames the strongest
honest feature (days since the last purchase, single AUC about 0.75) is one of a family of
correlated behaviour features (frequency, tenure, spend trend), so the others together reach
about as much or more, and nothing fires. In Bank Marketing, ``duration`` (the call length,
known only after the call) reaches about 0.83 alone while the 15 other inputs together reach
about 0.79, so it fires; the next best Bank feature (``poutcome``, about 0.61 alone) is far from
both bars.

The single-feature AUC is *cross-fitted*: numeric features are cut into at most 20 quantile
bins (plus a bin for missing values), categories stay as they are, and each row gets the
positive rate of its bin or category on the other folds. So a non-monotone effect counts, and an
identifier-like column (one value per customer) does not look predictive merely by memorising
the training rows. The "all other features" AUC is the better of a histogram gradient boosting model (with early
stopping) and a logistic regression, both cross-validated on a stratified subsample of at most
50,000 rows; it is only worked out for the features that pass ``min_auc``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from crmlens.predict.models import make_model, stratified_subsample

__all__ = ["leakage_scan", "single_feature_auc"]

_BINS = 20
_FOLDS = 5
_OTHERS_MAX_ROWS = 50_000


def _bin_codes(series: pd.Series, numeric: bool) -> np.ndarray:
    """Integer code per row: quantile bin (numeric) or category; missing values get their own."""
    if numeric:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64,
                                                                  na_value=np.nan)
        known = ~np.isnan(values)
        codes = np.full(len(values), -1, dtype=np.int64)
        if known.any():
            edges = np.unique(np.quantile(values[known], np.linspace(0, 1, _BINS + 1)[1:-1]))
            codes[known] = np.searchsorted(edges, values[known], side="right")
        return codes + 1
    codes, _ = pd.factorize(series.astype(object), use_na_sentinel=True)
    return codes.astype(np.int64) + 1


def single_feature_auc(column: pd.Series, y, *, numeric: bool, n_folds: int = _FOLDS,
                       random_state: int = 0) -> float:
    """Cross-fitted ROC AUC of one feature alone, ``max(auc, 1 - auc)``.

    Parameters
    ----------
    column : Series
        The feature.
    y : array-like of 0/1
        Outcome.
    numeric : bool
        Whether to cut the feature into quantile bins (else each value is a category).
    n_folds : int, default=5
        Folds of the cross-fitting.
    random_state : int, default=0
        Seed of the folds.

    Returns
    -------
    float
        0.5 for a feature with no information (or when ``y`` holds a single class).
    """
    y = np.asarray(y).astype(np.int64)
    if y.min() == y.max():
        return 0.5
    codes = _bin_codes(column.reset_index(drop=True), numeric)
    n_codes = int(codes.max()) + 1
    score = np.empty(len(y))
    folds = StratifiedKFold(n_splits=min(n_folds, int(np.bincount(y).min())) or 2,
                            shuffle=True, random_state=random_state)
    for train, test in folds.split(np.zeros(len(y)), y):
        hits = np.bincount(codes[train], weights=y[train], minlength=n_codes)
        sizes = np.bincount(codes[train], minlength=n_codes)
        prior = y[train].mean()
        # a little shrinkage to the overall rate, so a code seen once does not score 0 or 1
        score[test] = ((hits + prior) / (sizes + 1.0))[codes[test]]
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def _others_auc(X: pd.DataFrame, y: np.ndarray, feature: str, numeric: list[str],
                categorical: list[str], random_state: int) -> float:
    numeric = [c for c in numeric if c != feature]
    categorical = [c for c in categorical if c != feature]
    if not numeric and not categorical:
        return 0.5
    idx = stratified_subsample(y, _OTHERS_MAX_ROWS, random_state=random_state)
    Xs, ys = X.iloc[idx], y[idx]
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=random_state)
    best = 0.5
    # Two views of "everything else": boosting (interactions; early stopping so a few thousand
    # rows do not overfit it) and a logistic regression (steady on small data). The better
    # one counts, so a strong honest feature is not flagged because one model was weak.
    for name, params in (("hist_gbm", {"max_iter": 200, "early_stopping": True}),
                         ("logreg", {})):
        model = make_model(name, numeric=numeric, categorical=categorical, params=params,
                           class_weight=None, random_state=random_state)
        proba = cross_val_predict(model, Xs, ys, cv=folds, method="predict_proba")[:, 1]
        best = max(best, float(roc_auc_score(ys, proba)))
    return best


def leakage_scan(X: pd.DataFrame, y, *, numeric: Sequence[str], categorical: Sequence[str],
                 threshold: float = 0.90, min_auc: float = 0.75, margin: float = 0.0,
                 random_state: int = 0) -> list[dict]:
    """Features whose predictive power alone suggests they were recorded after the outcome.

    Parameters
    ----------
    X : DataFrame
        Features.
    y : array-like of 0/1
        Outcome.
    numeric, categorical : sequence of str
        Columns to scan, by kind.
    threshold : float, default=0.90
        A single-feature AUC at or above this always warns.
    min_auc : float, default=0.75
        Below this a feature never warns. Between ``min_auc`` and ``threshold`` it warns when
        it beats the model of all the other features by more than ``margin``.
    margin : float, default=0.0
        How much higher than the other features' model the single-feature AUC must be.
    random_state : int, default=0
        Seed of the folds and subsample.

    Returns
    -------
    list of dict
        One dict per flagged feature, strongest first: ``feature``, ``auc`` (alone),
        ``others_auc`` (model of the other features, NaN when not needed), ``rule``
        (``"high_auc"`` or ``"beats_others"``), ``message_key`` (i18n key of the warning; its
        text takes ``feature``, ``auc`` and ``others_auc``).
    """
    y = np.asarray(y).astype(np.int64)
    numeric, categorical = list(numeric), list(categorical)
    X = X.reset_index(drop=True)
    warnings = []
    for feature in numeric + categorical:
        auc = single_feature_auc(X[feature], y, numeric=feature in numeric,
                                 random_state=random_state)
        if auc < min_auc:
            continue
        if auc >= threshold:
            warnings.append({"feature": feature, "auc": auc, "others_auc": float("nan"),
                             "rule": "high_auc", "message_key": "predict.leakage.high_auc"})
            continue
        others = _others_auc(X, y, feature, numeric, categorical, random_state)
        if auc > others + margin:
            warnings.append({"feature": feature, "auc": auc, "others_auc": others,
                             "rule": "beats_others",
                             "message_key": "predict.leakage.beats_others"})
    return sorted(warnings, key=lambda w: -w["auc"])
