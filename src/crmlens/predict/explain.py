"""Why the model says what it says: global importance and per-customer factors.

* **Global**: permutation importance on held-out rows (scikit-learn's
  :func:`~sklearn.inspection.permutation_importance` on the raw feature table, so a category
  counts as one feature however many one-hot columns it became): how much the ROC AUC drops
  when a feature's values are shuffled.
* **Per customer**: for each feature, the risk the model gives the customer minus the risk it
  gives the same customer with that one feature set to a typical value (the median of numbers,
  the most common category). A positive effect means the customer's own value raises the risk.
  This "what if it were typical" contrast is model-agnostic, costs one prediction per feature
  and row, and reads in plain words: "days since last purchase is 210 (typical: 45): raises the
  risk by 18 points".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from crmlens.i18n import t
from crmlens.predict.models import stratified_subsample

__all__ = ["customer_factors", "describe_factor", "permutation_importance_table",
           "typical_values"]

# Held-out rows used for permutation importance (its cost is features x repeats x rows).
IMPORTANCE_ROWS = 20_000
# Rows predicted at once per feature when working out factors (bounds the memory).
FACTOR_BATCH = 50_000


def permutation_importance_table(model: Any, X: pd.DataFrame, y, *, n_repeats: int = 3,
                                 max_rows: int | None = IMPORTANCE_ROWS,
                                 random_state: int = 0) -> pd.DataFrame:
    """The drop in ROC AUC when each feature is shuffled, most important first.

    Parameters
    ----------
    model : fitted classifier
        Takes the raw feature table (a pipeline of :func:`~crmlens.predict.models.make_model`).
    X : pandas.DataFrame
        Held-out rows.
    y : array-like of 0/1
    n_repeats : int, default 3
    max_rows : int or None, default 20000
        A stratified subsample of at most this many rows.
    random_state : int, default 0

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``importance`` (mean AUC drop), ``std``.
    """
    y = np.asarray(y).astype(np.int64)
    idx = stratified_subsample(y, max_rows, random_state=random_state)
    Xs, ys = X.iloc[idx].reset_index(drop=True), y[idx]
    if len(np.unique(ys)) < 2:
        return pd.DataFrame({"feature": list(X.columns), "importance": 0.0, "std": 0.0})
    result = permutation_importance(model, Xs, ys, scoring="roc_auc", n_repeats=n_repeats,
                                    random_state=random_state, n_jobs=1)
    table = pd.DataFrame({"feature": list(X.columns),
                          "importance": result.importances_mean,
                          "std": result.importances_std})
    return table.sort_values(["importance", "feature"], ascending=[False, True],
                             kind="stable").reset_index(drop=True)


def typical_values(X: pd.DataFrame) -> pd.Series:
    """The reference of each feature: median of a numeric column, most common category else."""
    out = {}
    for c in X.columns:
        col = X[c]
        if pd.api.types.is_numeric_dtype(col):
            med = col.median()
            out[c] = float(med) if pd.notna(med) else np.nan
        else:
            mode = col.dropna().mode()
            out[c] = mode.iloc[0] if len(mode) else None
    return pd.Series(out, dtype=object)


def _text(value: Any) -> str | None:
    """A stored value: numbers without needless decimals, missing as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer():
            return str(int(v))
        return f"{v:.4g}"
    return str(value)


def customer_factors(model: Any, X: pd.DataFrame, *, top: int = 3,
                     reference: pd.Series | None = None) -> pd.DataFrame:
    """The features that move each row's risk most, compared with typical values.

    Parameters
    ----------
    model : fitted classifier
        Takes the raw feature table.
    X : pandas.DataFrame
        The rows to explain.
    top : int, default 3
        Factors kept per row (largest absolute effect first).
    reference : pandas.Series, optional
        Typical value of each feature (default: :func:`typical_values` of ``X``).

    Returns
    -------
    pandas.DataFrame
        ``row`` (position in X), ``rank`` (1 = largest effect), ``feature``, ``value``,
        ``reference`` (text, None when missing), ``effect`` (the risk minus the risk with the
        feature at its reference; positive raises the risk). Features whose value equals the
        reference, and effects of exactly zero, are left out.
    """
    columns = list(X.columns)
    empty = pd.DataFrame(columns=["row", "rank", "feature", "value", "reference", "effect"])
    if len(X) == 0 or not columns:
        return empty
    ref = typical_values(X) if reference is None else reference
    parts = []
    for start in range(0, len(X), FACTOR_BATCH):
        batch = X.iloc[start:start + FACTOR_BATCH].reset_index(drop=True)
        base = model.predict_proba(batch)[:, 1]
        effects = np.zeros((len(batch), len(columns)))
        for j, c in enumerate(columns):
            probe = batch.copy(deep=False)
            value = ref.get(c)
            if pd.api.types.is_numeric_dtype(batch[c]):
                # float: the median of an integer column may be fractional
                probe[c] = np.full(len(batch), np.nan if value is None else float(value))
            else:
                probe[c] = pd.Series([value] * len(batch), dtype=object)
            effects[:, j] = base - model.predict_proba(probe)[:, 1]
        k = min(top, len(columns))
        order = np.argsort(-np.abs(effects), axis=1, kind="stable")[:, :k]
        rows = np.repeat(np.arange(len(batch)), k)
        cols = order.ravel()
        eff = effects[rows, cols]
        keep = eff != 0
        rows, cols, eff = rows[keep], cols[keep], eff[keep]
        ranks = np.tile(np.arange(1, k + 1), len(batch))[keep]
        values = [_text(batch.iat[r, c]) for r, c in zip(rows, cols)]
        parts.append(pd.DataFrame({
            "row": rows + start, "rank": ranks,
            "feature": np.asarray(columns, dtype=object)[cols],
            "value": values,
            "reference": [_text(ref.get(columns[c])) for c in cols],
            "effect": eff}))
    if not parts:
        return empty
    out = pd.concat(parts, ignore_index=True)
    # ranks count only the factors kept
    out["rank"] = out.groupby("row").cumcount() + 1
    return out


def describe_factor(label: str, value: Any, reference: Any, effect: float, *,
                    lang: str | None = None) -> str:
    """One factor in plain words, e.g. "Days since last purchase is 210 (typical: 45): raises
    the risk by 18.0 points".

    Parameters
    ----------
    label : str
        The feature's readable name.
    value, reference : str or number or None
        The customer's value and the typical one (None: not recorded).
    effect : float
        Change of the probability (positive raises the risk).
    lang : str, optional

    Returns
    -------
    str
    """
    missing = t("predict.factor.missing", lang=lang)

    def shown(v: Any) -> str:
        text = _text(v) if not isinstance(v, str) else v
        if text is None:
            return missing
        try:
            number = float(text)
        except ValueError:
            return text
        return f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"

    key = "predict.factor.raises" if effect > 0 else "predict.factor.lowers"
    return t(key, lang=lang, feature=label, value=shown(value), reference=shown(reference),
             effect=f"{abs(effect) * 100:.1f}")
