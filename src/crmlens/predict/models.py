"""The model zoo: seven classifier families behind one constructor, plus a naive baseline.

:func:`make_model` returns a scikit-learn :class:`~sklearn.pipeline.Pipeline` whose first step
prepares the raw feature table (imputation, scaling, one-hot or ordinal codes, whatever the
family needs) and whose last step is a :class:`BalancedClassifier` around the learner. Because
the preparation is *inside* the pipeline, cross-validation refits it on each training fold and
nothing about the test rows leaks into it.

Class imbalance. Churners or responders are usually a minority; :class:`BalancedClassifier`
trains the learner with "balanced" sample weights (each class weighs the same in total, as
``class_weight="balanced"`` does) and then maps its probabilities back to the real class shares
(the prior correction of Saerens, Latinne and Decaestecker, 2002: the weighted learner estimates
odds under equal priors; multiplying them by the training odds restores the true scale). The
minority class therefore shapes the splits and the loss, and the probabilities stay honest for
log loss, Brier score and calibration.

Scale. Every family runs on 1M rows x ~40 features. The families whose cost grows faster than
linearly, or that are slow in pure Python, train on a stratified random subsample of at most
:data:`DEFAULT_MAX_ROWS` rows (override with ``params={"max_rows": n}``; ``None`` = all rows):

======================  =========  ==========================================================
family                  cap        why
======================  =========  ==========================================================
``logreg``              none       linear in n (lbfgs on a sparse one-hot matrix)
``cart``                none       scikit-learn tree, n log n
``hist_gbm``            none       histogram boosting, linear in n
``random_forest``       200,000    100 full trees on 2 cores; more rows add little AUC
``c45``                 200,000    :class:`crmlens.trees.C45Classifier` (NumPy, one split
                                   search per node)
``mlp``                 100,000    Adam epochs over all rows; early stopping
``svm``                 100,000    :class:`KernelSVM`: a linear SVM on a Nystroem map of
                                   the RBF kernel (exact kernel SVC is quadratic to cubic in
                                   n to fit and costs n_test x n_support to predict: hours at
                                   a million customers); 3 folds for Platt scaling
======================  =========  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.kernel_approximation import Nystroem
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from crmlens.errors import InputError
from crmlens.trees import C45Classifier, CARTClassifier

__all__ = [
    "DEFAULT_MAX_ROWS",
    "MODEL_FAMILIES",
    "BalancedClassifier",
    "KernelSVM",
    "NaiveBaseline",
    "make_model",
    "search_space",
    "stratified_subsample",
]

MODEL_FAMILIES = ("logreg", "cart", "c45", "random_forest", "hist_gbm", "svm", "mlp")

DEFAULT_MAX_ROWS: dict[str, int | None] = {
    "logreg": None,
    "cart": None,
    "c45": 200_000,
    "random_forest": 200_000,
    "hist_gbm": None,
    "svm": 100_000,
    "mlp": 100_000,
}

MISSING_LEVEL = "missing"
_MAX_ONE_HOT = 30  # levels per categorical feature kept by one-hot (the rest -> infrequent)
_MAX_ORDINAL = 250  # histogram GBM handles at most 255 bins per feature

# Defaults chosen so that every family is reasonable without a search.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "logreg": {"C": 1.0, "max_iter": 1000},
    "cart": {"max_depth": 8, "min_samples_leaf": 50},
    "c45": {"max_depth": 10, "min_samples_leaf": 20, "confidence_factor": 0.25},
    "random_forest": {"n_estimators": 100, "min_samples_leaf": 5, "max_features": "sqrt",
                      "n_jobs": -1},
    "hist_gbm": {"learning_rate": 0.1, "max_iter": 300, "max_leaf_nodes": 31,
                 "min_samples_leaf": 40, "l2_regularization": 0.0, "early_stopping": True,
                 "validation_fraction": 0.1, "n_iter_no_change": 15},
    "svm": {"C": 1.0, "gamma": "scale", "n_components": 300},
    "mlp": {"hidden_layer_sizes": (64, 32), "alpha": 1e-3, "learning_rate_init": 1e-3,
            "early_stopping": True, "max_iter": 200, "n_iter_no_change": 8},
}

_SPACES: dict[str, dict[str, list]] = {
    "logreg": {"C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]},
    "cart": {"max_depth": [4, 6, 8, 10, 12, None],
             "min_samples_leaf": [10, 20, 50, 100, 200, 500],
             "ccp_alpha": [0.0, 1e-5, 1e-4]},
    "c45": {"max_depth": [4, 6, 8, 10, 12],
            "min_samples_leaf": [5, 10, 20, 50, 100],
            "confidence_factor": [0.1, 0.25, 0.4]},
    "random_forest": {"n_estimators": [100, 200],
                      "max_depth": [None, 10, 16, 24],
                      "min_samples_leaf": [1, 3, 5, 10, 20],
                      "max_features": ["sqrt", 0.3, 0.5]},
    "hist_gbm": {"learning_rate": [0.03, 0.05, 0.1, 0.2],
                 "max_leaf_nodes": [15, 31, 63],
                 "min_samples_leaf": [20, 40, 100, 200],
                 "l2_regularization": [0.0, 0.1, 1.0, 10.0],
                 "max_iter": [200, 300, 500]},
    "svm": {"C": [0.01, 0.1, 1.0, 10.0], "gamma": ["scale", 0.003, 0.01, 0.03, 0.1],
            "n_components": [300, 600]},
    "mlp": {"hidden_layer_sizes": [(32,), (64,), (64, 32), (128, 64)],
            "alpha": [1e-4, 1e-3, 1e-2, 1e-1],
            "learning_rate_init": [3e-4, 1e-3, 3e-3]},
}


def search_space(name: str) -> dict[str, list]:
    """Candidate values of the hyperparameters the random search tries for a family.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_FAMILIES`.

    Returns
    -------
    dict of str to list
        Hyperparameter name (of the learner itself, as accepted by ``make_model(params=...)``)
        to the values to draw from.
    """
    _check_family(name)
    return {key: list(values) for key, values in _SPACES[name].items()}


def _check_family(name: str) -> None:
    if name not in MODEL_FAMILIES:
        raise InputError("error.predict_models.unknown_family", name=name,
                         allowed=", ".join(MODEL_FAMILIES))


# ------------------------------------------------------------------ preparation
def as_category_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as Python strings (object dtype), missing values as NaN.

    One-hot and ordinal encoders need one value type per column; a column of codes read as
    integers, booleans or mixed values becomes its text form.

    Parameters
    ----------
    frame : DataFrame
        The categorical columns.

    Returns
    -------
    DataFrame
        Same shape and columns.
    """
    out = {}
    for column in frame.columns:
        series = frame[column]
        missing = series.isna().to_numpy()
        values = series.astype(object).to_numpy(copy=True)
        if not all(isinstance(v, str) for v in values[~missing][:1000]):
            values = series.astype(str).astype(object).to_numpy(copy=True)
        values[missing] = np.nan
        out[column] = values
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


def as_float(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float64 (booleans to 0/1, pandas NA to NaN).

    Parameters
    ----------
    frame : DataFrame
        The numeric columns.

    Returns
    -------
    DataFrame
        Same shape and columns, float64.
    """
    return pd.DataFrame({c: pd.to_numeric(frame[c], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan) for c in frame.columns},
        index=frame.index, columns=frame.columns)


def _strings() -> FunctionTransformer:
    return FunctionTransformer(as_category_strings, feature_names_out="one-to-one")


def _floats() -> FunctionTransformer:
    return FunctionTransformer(as_float, feature_names_out="one-to-one")


def _preprocessor(name: str, numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """The preparation each family needs, fitted on the training rows only."""
    if name in ("logreg", "svm", "mlp"):  # scale-sensitive: impute, standardise, one-hot
        num = Pipeline([("float", _floats()),
                        ("impute", SimpleImputer(strategy="median", add_indicator=True,
                                                 keep_empty_features=True)),
                        ("scale", StandardScaler())])
        cat = Pipeline([("text", _strings()),
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_LEVEL,
                                                 keep_empty_features=True)),
                        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                                 max_categories=_MAX_ONE_HOT,
                                                 sparse_output=name == "logreg"))])
        sparse_threshold = 0.3 if name == "logreg" else 0.0
    elif name in ("cart", "random_forest"):  # NaN-aware trees; categories one-hot
        num = _floats()
        cat = Pipeline([("text", _strings()),
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_LEVEL,
                                                 keep_empty_features=True)),
                        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                                 max_categories=_MAX_ONE_HOT,
                                                 sparse_output=False))])
        sparse_threshold = 0.0
    elif name == "hist_gbm":  # native categorical splits on ordinal codes
        num = _floats()
        cat = Pipeline([("text", _strings()),
                        ("ordinal", OrdinalEncoder(handle_unknown="use_encoded_value",
                                                   unknown_value=np.nan,
                                                   encoded_missing_value=np.nan,
                                                   max_categories=_MAX_ORDINAL))])
        sparse_threshold = 0.0
    else:  # c45: categorical strings and NaN handled natively by the learner
        num = _floats()
        cat = _strings()
        sparse_threshold = 0.0
    transformer = ColumnTransformer([("num", num, numeric), ("cat", cat, categorical)],
                                    remainder="drop", sparse_threshold=sparse_threshold,
                                    verbose_feature_names_out=False)
    if name == "c45":  # the tree reads column kinds from pandas dtypes
        transformer.set_output(transform="pandas")
    return transformer


def _learner(name: str, settings: dict[str, Any], n_numeric: int, n_categorical: int,
             random_state: int):
    if name == "logreg":
        return LogisticRegression(random_state=random_state, **settings)
    if name == "cart":
        return CARTClassifier(random_state=random_state, **settings)
    if name == "c45":
        return C45Classifier(**settings)
    if name == "random_forest":
        return RandomForestClassifier(random_state=random_state, **settings)
    if name == "hist_gbm":
        mask = [False] * n_numeric + [True] * n_categorical
        return HistGradientBoostingClassifier(
            categorical_features=mask if any(mask) else None, random_state=random_state,
            **settings)
    if name == "svm":  # Platt scaling of the SVM scores, cross-fitted
        # shuffled folds: rows often come in time order, and unshuffled folds of data that
        # drift over time fitted the sigmoid backwards (AUC 0.28 on Bank Marketing)
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=random_state)
        return CalibratedClassifierCV(KernelSVM(random_state=random_state, **settings),
                                      method="sigmoid", cv=folds, ensemble=False)
    return MLPClassifier(random_state=random_state, **settings)


def _accepted_params(name: str) -> set[str]:
    probe = KernelSVM() if name == "svm" else _learner(name, {}, 0, 0, 0)
    return set(probe.get_params(deep=False))


def make_model(name: str, *, numeric: Sequence[str], categorical: Sequence[str],
               params: Mapping[str, Any] | None = None, class_weight: str | None = "balanced",
               random_state: int = 0) -> Pipeline:
    """A fresh (unfitted) pipeline for one model family.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_FAMILIES`: ``"logreg"`` (logistic regression), ``"cart"``
        (:class:`crmlens.trees.CARTClassifier`), ``"c45"``
        (:class:`crmlens.trees.C45Classifier`), ``"random_forest"``, ``"hist_gbm"``
        (histogram gradient boosting), ``"svm"`` (:class:`KernelSVM`, an RBF-kernel SVM by
        the Nystroem method; probabilities by Platt scaling in
        :class:`~sklearn.calibration.CalibratedClassifierCV`), ``"mlp"`` (neural network).
    numeric : sequence of str
        Columns of the input table used as numbers.
    categorical : sequence of str
        Columns used as categories. Other columns are ignored.
    params : mapping, optional
        Hyperparameters of the learner (the names of :func:`search_space`), overriding the
        family's defaults; the key ``"max_rows"`` overrides the subsample cap
        (:data:`DEFAULT_MAX_ROWS`; ``None`` = train on all rows).
    class_weight : {"balanced", None}, default="balanced"
        ``"balanced"``: the classes weigh the same in training and the probabilities are
        mapped back to the real class shares (see :class:`BalancedClassifier`).
    random_state : int, default=0
        Seed of the learner and of the subsample.

    Returns
    -------
    Pipeline
        Steps ``"prepare"`` (a :class:`~sklearn.compose.ColumnTransformer`) and ``"model"``
        (a :class:`BalancedClassifier`).

    Examples
    --------
    >>> model = make_model("logreg", numeric=["age"], categorical=["region"])
    >>> [step for step, _ in model.steps]
    ['prepare', 'model']
    """
    _check_family(name)
    if class_weight not in ("balanced", None):
        raise InputError("error.predict_models.bad_class_weight", value=class_weight)
    numeric, categorical = list(numeric), list(categorical)
    if not numeric and not categorical:
        raise InputError("error.predict_models.no_features")
    settings = dict(_DEFAULTS[name])
    settings.update(params or {})
    max_rows = settings.pop("max_rows", DEFAULT_MAX_ROWS[name])
    unknown = set(settings) - _accepted_params(name)
    if unknown:
        raise InputError("error.predict_models.unknown_param", family=name,
                         params=", ".join(sorted(unknown)))
    learner = _learner(name, settings, len(numeric), len(categorical), random_state)
    return Pipeline([
        ("prepare", _preprocessor(name, numeric, categorical)),
        ("model", BalancedClassifier(learner, balance=class_weight == "balanced",
                                     max_rows=max_rows, random_state=random_state)),
    ])


# ------------------------------------------------------------------ kernel SVM
class KernelSVM(ClassifierMixin, BaseEstimator):
    """An RBF-kernel support vector machine that scales: a linear SVM on a Nystroem map.

    The Nystroem method approximates the RBF kernel by its values against ``n_components``
    training rows, so the SVM is linear in a space of that size: fitting is linear in the rows
    and predicting costs ``n_components`` kernel values per row, where an exact kernel SVC costs
    one per support vector (thousands) and fits in quadratic to cubic time.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength of the linear SVM.
    gamma : float or "scale", default="scale"
        RBF width; "scale" is ``1 / n_features`` (on standardised inputs, what SVC's "scale"
        gives).
    n_components : int, default=300
        Rows the kernel is evaluated against.
    random_state : int, default=0

    Attributes
    ----------
    map_ : sklearn.kernel_approximation.Nystroem
    svm_ : sklearn.svm.LinearSVC
    classes_ : ndarray
    """

    _parameter_constraints: dict = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "gamma": [Interval(Real, 0, None, closed="neither"), StrOptions({"scale"})],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    _BATCH = 50_000  # rows mapped at once when predicting (bounds the memory)

    def __init__(self, *, C=1.0, gamma="scale", n_components=300, random_state=0):
        self.C = C
        self.gamma = gamma
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Fit the kernel map and the linear SVM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        self._validate_params()
        _check_feature_names(self, X, reset=True)
        X = check_array(X, accept_sparse=False)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        gamma = 1.0 / max(X.shape[1], 1) if self.gamma == "scale" else float(self.gamma)
        self.map_ = Nystroem(kernel="rbf", gamma=gamma,
                             n_components=min(int(self.n_components), X.shape[0]),
                             random_state=self.random_state).fit(X)
        self.svm_ = LinearSVC(C=self.C, dual="auto", max_iter=5000,
                              random_state=self.random_state)
        self.svm_.fit(self.map_.transform(X), y, sample_weight=sample_weight)
        _check_n_features(self, X, reset=True)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Signed distance to the separating hyperplane (positive: the second class).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = check_array(X, accept_sparse=False)
        _check_n_features(self, X, reset=False)
        parts = [self.svm_.decision_function(self.map_.transform(X[start:start + self._BATCH]))
                 for start in range(0, X.shape[0], self._BATCH)]
        return np.concatenate(parts) if parts else np.empty(0)

    def predict(self, X) -> np.ndarray:
        """The class on the side of the hyperplane.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]


# ------------------------------------------------------------------ subsample and balance
def stratified_subsample(y, max_rows: int | None, *, random_state: int = 0) -> np.ndarray:
    """Row positions of a stratified random subsample of at most ``max_rows`` rows.

    Every class keeps its share (rounded, at least one row per class); the positions come back
    sorted. With ``max_rows`` None or not below the number of rows, all positions.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels.
    max_rows : int or None
        Cap on the number of rows.
    random_state : int, default=0
        Seed.

    Returns
    -------
    ndarray of int
    """
    y = np.asarray(y)
    n = len(y)
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    classes, codes = np.unique(y, return_inverse=True)
    keep = []
    for code in range(len(classes)):
        members = np.flatnonzero(codes == code)
        take = max(1, int(round(max_rows * len(members) / n)))
        keep.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def _take(X, idx: np.ndarray):
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    return X[idx]


class BalancedClassifier(ClassifierMixin, BaseEstimator):
    """A classifier trained with balanced class weights on an optional stratified subsample.

    Parameters
    ----------
    estimator : classifier
        Any scikit-learn classifier whose ``fit`` accepts ``sample_weight``; it is cloned.
    balance : bool, default=True
        Weight each class inversely to its frequency, then correct the probabilities back to
        the training class shares: ``p_k ∝ q_k * prior_k`` where ``q`` is what the weighted
        learner predicts (it learned under equal priors) and ``prior_k`` the share of class k.
    max_rows : int or None, default=None
        Train on a stratified random subsample of at most this many rows.
    random_state : int, default=0
        Seed of the subsample.

    Attributes
    ----------
    estimator_ : classifier
        The fitted learner.
    classes_ : ndarray
    prior_ : ndarray of shape (n_classes,)
        Class shares of the training rows.
    n_train_ : int
        Rows the learner was trained on (after the subsample).
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "balance": ["boolean"],
        "max_rows": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, *, balance=True, max_rows=None, random_state=0):
        self.estimator = estimator
        self.balance = balance
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Fit the learner.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            Multiplied with the balancing weights.

        Returns
        -------
        self
        """
        self._validate_params()
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        seed = self.random_state if isinstance(self.random_state, Integral) else 0
        idx = stratified_subsample(y, self.max_rows, random_state=seed)
        if len(idx) < len(y):
            X, y = _take(X, idx), y[idx]
            sample_weight = None if sample_weight is None else np.asarray(sample_weight)[idx]
        self.classes_, codes = np.unique(y, return_inverse=True)
        given = (np.ones(len(y)) if sample_weight is None
                 else np.asarray(sample_weight, dtype=float))
        # class totals by weight, so integer weights act exactly like repeated rows
        totals = np.bincount(codes, weights=given, minlength=len(self.classes_))
        self.prior_ = totals / totals.sum()
        if self.balance:  # as class_weight="balanced": n / (n_classes * class total)
            factor = totals.sum() / (len(self.classes_) * np.maximum(totals, 1e-12))
            weights = given * factor[codes]
        else:
            weights = None if sample_weight is None else given
        self.estimator_ = clone(self.estimator)
        if weights is None:
            self.estimator_.fit(X, y)
        else:
            self.estimator_.fit(X, y, sample_weight=weights)
        self.n_train_ = len(y)
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None:  # accepts what the learner accepts
            inner = get_tags(self.estimator)
            tags.input_tags.sparse = inner.input_tags.sparse
            tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities on the scale of the training class shares.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=float)
        # the learner may know fewer classes than self (a class absent from a subsample)
        if not self.balance:
            return proba
        proba = proba * self.prior_[None, :]
        total = proba.sum(axis=1, keepdims=True)
        total[total <= 0] = 1.0
        return proba / total

    def predict(self, X) -> np.ndarray:
        """The most probable class.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# ------------------------------------------------------------------ naive baseline
class NaiveBaseline(ClassifierMixin, BaseEstimator):
    """The naive forecast a model has to beat.

    Without a rule, every row gets the class shares of the training rows (the historical churn
    rate). With ``feature`` and ``threshold``, rows split into ``feature >= threshold`` (for
    churn: "no purchase in the last window"), below, and missing; each group gets the class
    shares its training rows had (a group without training rows gets the overall shares).

    Parameters
    ----------
    feature : str or int, optional
        Column of ``X`` (name for a DataFrame, position otherwise) the rule reads.
    threshold : float, optional
        Rows with ``feature >= threshold`` form the rule's group. Required with ``feature``.

    Attributes
    ----------
    classes_ : ndarray
    prior_ : ndarray of shape (n_classes,)
        Class shares of all training rows.
    group_proba_ : ndarray of shape (3, n_classes)
        Class shares in the groups "at or above the threshold", "below", "missing" (rule only).
    n_features_in_ : int
    feature_names_in_ : ndarray
        When fitted on a DataFrame with string column names.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"recency_days": [10, 20, 200, 300]})
    >>> base = NaiveBaseline(feature="recency_days", threshold=90).fit(X, [0, 0, 1, 0])
    >>> base.predict_proba(pd.DataFrame({"recency_days": [5, 120]}))[:, 1].tolist()
    [0.0, 0.5]
    """

    _parameter_constraints: dict = {
        "feature": [str, Interval(Integral, 0, None, closed="left"), None],
        "threshold": [Interval(Real, None, None, closed="neither"), None],
    }

    def __init__(self, *, feature=None, threshold=None):
        self.feature = feature
        self.threshold = threshold

    def _column(self, X, *, reset: bool) -> np.ndarray | None:
        if isinstance(X, pd.DataFrame):
            _check_feature_names(self, X, reset=reset)
            _check_n_features(self, X, reset=reset)
            self._n_rows = X.shape[0]
            if X.shape[0] < 1:
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a "
                                 "minimum of 1 is required.")
            if self.feature is None:
                return None
            if isinstance(self.feature, str):
                if self.feature not in X.columns:
                    raise InputError("error.predict_models.baseline_feature_missing",
                                     feature=self.feature)
                series = X[self.feature]
            else:
                series = X.iloc[:, self.feature]
            return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64,
                                                                    na_value=np.nan)
        matrix = check_array(X, dtype=None if self.feature is None else np.float64,
                             ensure_all_finite="allow-nan")
        self._n_rows = matrix.shape[0]
        _check_feature_names(self, X, reset=reset)
        _check_n_features(self, matrix, reset=reset)
        if self.feature is None:
            return None
        if not isinstance(self.feature, Integral):
            raise InputError("error.predict_models.baseline_feature_missing",
                             feature=self.feature)
        return matrix[:, self.feature]

    def _groups(self, column: np.ndarray) -> np.ndarray:
        group = np.where(column >= self.threshold, 0, 1)
        group[np.isnan(column)] = 2
        return group

    def fit(self, X, y):
        """Learn the class shares (overall, and per group of the rule).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        self._validate_params()
        if (self.feature is None) != (self.threshold is None):
            raise InputError("error.predict_models.baseline_rule_incomplete")
        column = self._column(X, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        counts = np.bincount(codes, minlength=len(self.classes_))
        self.prior_ = counts / counts.sum()
        if column is not None:
            groups = self._groups(column)
            table = np.zeros((3, len(self.classes_)))
            np.add.at(table, (groups, codes), 1.0)
            sizes = table.sum(axis=1, keepdims=True)
            self.group_proba_ = np.where(sizes > 0, table / np.maximum(sizes, 1),
                                         self.prior_[None, :])
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities: the training shares of each row's group.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        column = self._column(X, reset=False)
        if column is None:
            return np.tile(self.prior_, (self._n_rows, 1))
        return self.group_proba_[self._groups(column)]

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row's group.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.poor_score = True  # a baseline, as DummyClassifier
        return tags
