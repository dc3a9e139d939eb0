"""Turn the inputs of ID3/C4.5 into one float matrix plus a description of each column.

A pandas DataFrame may mix categorical columns (object, string, category or bool dtype) and
numeric ones; a numpy array (or anything else array-like) is all numeric. Categorical values
are stored as integer codes (as floats, NaN for missing or unseen), so that the splitter indexes
a single Fortran-ordered matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.utils.validation import _check_feature_names, _check_n_features, check_array


@dataclass(frozen=True)
class ColumnInfo:
    """What the learner knows about the columns it was fitted on."""

    categorical: np.ndarray  # bool, one per column
    categories: tuple  # per column: tuple of category values, or None for numeric
    integer: np.ndarray  # bool: numeric column whose known values are all whole numbers


def _is_categorical(series: pd.Series) -> bool:
    dtype = series.dtype
    return (isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def _python_value(value):
    return value.item() if isinstance(value, np.generic) else value


def _sorted_categories(series: pd.Series) -> tuple:
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(series.dropna().unique())
        values = [c for c in series.dtype.categories if c in present]
    else:
        values = list(pd.unique(series.dropna()))
        try:
            values.sort()
        except TypeError:  # mixed types: a stable, readable order
            values.sort(key=str)
    return tuple(_python_value(v) for v in values)


def _codes(series: pd.Series, categories: tuple) -> np.ndarray:
    """Category positions as floats; NaN for missing values and unseen categories."""
    codes = pd.Index(list(categories), dtype=object).get_indexer(
        series.astype(object)).astype(np.float64)
    codes[codes < 0] = np.nan
    return codes


def _numeric(series: pd.Series, name) -> np.ndarray:
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {name!r} is neither numeric nor categorical") from exc


def _check_finite(matrix: np.ndarray, allow_nan: bool, columns: np.ndarray | None = None) -> None:
    if np.isinf(matrix).any():
        raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
    checked = matrix if columns is None else matrix[:, columns]
    if not allow_nan and np.isnan(checked).any():
        raise ValueError("Input X contains NaN; this learner does not handle missing values "
                         "(C45Classifier does).")


def encode_fit(estimator, X, *, allow_nan: bool) -> tuple[np.ndarray, ColumnInfo]:
    """Check ``X`` at fit time, set ``n_features_in_`` / ``feature_names_in_``, encode it."""
    if isinstance(X, pd.DataFrame):
        _check_feature_names(estimator, X, reset=True)
        _check_n_features(estimator, X, reset=True)
        if X.shape[0] < 1:
            raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                             "of 1 is required.")
        if X.shape[1] < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                             "of 1 is required.")
        columns, categorical, categories = [], [], []
        for position in range(X.shape[1]):
            series = X.iloc[:, position]
            if _is_categorical(series):
                cats = _sorted_categories(series)
                codes = _codes(series, cats)
                columns.append(codes)
                categorical.append(True)
                categories.append(cats)
            else:
                columns.append(_numeric(series, X.columns[position]))
                categorical.append(False)
                categories.append(None)
        matrix = np.column_stack(columns) if columns else np.empty((len(X), 0))
        categorical = np.asarray(categorical, dtype=bool)
    else:
        matrix = check_array(X, dtype=np.float64,
                             ensure_all_finite="allow-nan" if allow_nan else True)
        _check_feature_names(estimator, X, reset=True)
        _check_n_features(estimator, matrix, reset=True)
        categorical = np.zeros(matrix.shape[1], dtype=bool)
        categories = [None] * matrix.shape[1]
    _check_finite(matrix, allow_nan)
    integer = np.array([
        not cat and bool(np.all(np.equal(np.mod(col[~np.isnan(col)], 1), 0)))
        for cat, col in zip(categorical, matrix.T)], dtype=bool)
    info = ColumnInfo(categorical=categorical, categories=tuple(categories), integer=integer)
    return np.asfortranarray(matrix), info


def encode_predict(estimator, X, info: ColumnInfo, *, allow_nan: bool) -> np.ndarray:
    """Check ``X`` against what was seen at fit time and encode it the same way.

    Categories not seen during fit become NaN (the learner treats them like missing values).
    """
    if isinstance(X, pd.DataFrame):
        _check_feature_names(estimator, X, reset=False)
        _check_n_features(estimator, X, reset=False)
        columns = []
        for position in range(X.shape[1]):
            series = X.iloc[:, position]
            cats = info.categories[position]
            if cats is not None:
                codes = _codes(series, cats)
                columns.append(codes)
            else:
                columns.append(_numeric(series, X.columns[position]))
        matrix = np.column_stack(columns) if columns else np.empty((len(X), 0))
    else:
        matrix = check_array(X, dtype=np.float64,
                             ensure_all_finite="allow-nan" if allow_nan else True)
        _check_feature_names(estimator, X, reset=False)
        _check_n_features(estimator, matrix, reset=False)
        if info.categorical.any():
            raise ValueError("this tree was fitted on a DataFrame with categorical columns; "
                             "pass a DataFrame with the same columns")
    # unseen categories are NaN codes by design; only numeric columns must be complete
    _check_finite(matrix, allow_nan, ~info.categorical)
    return np.asfortranarray(matrix)
