"""Preprocessing of a customer feature table for clustering, with every choice shown.

:class:`CustomerPreprocessor` decides per feature whether to keep it and how to transform it,
records the decision and its reason in ``plan_`` (``describe()`` shows it as a table), and
reports the correlations of the kept features. The rules, in order:

1. identifier columns (``id_columns``) are set aside;
2. a feature with more than ``max_missing`` of its values missing is dropped;
3. a feature with a single distinct value is dropped (constant);
4. a numeric feature that reaches above 1 (so not a share or a rate) and has sample skewness
   above ``skew_threshold`` gets ``log1p`` when it is non-negative, and the signed log
   ``sign(x)·log1p(|x|)`` when at most 5 % of its values are negative (net spend after
   returns); money and counts are right-skewed, and on the log scale a few big spenders no
   longer dominate every distance;
5. a numeric feature whose absolute Pearson correlation (after step 4, on at most 100,000
   rows) with an earlier kept feature is at least ``duplicate_threshold`` is dropped as a
   near-duplicate of it;
6. missing values are imputed (numeric: median; categorical: the level ``"missing"``);
7. scaling: ``"standard"`` (mean, standard deviation; the default, applied after the log rule
   has tamed money and counts) or ``"robust"`` (median, interquartile range / 1.349, which
   equals the standard deviation on normal data; the deviation when the IQR is 0); ``"auto"``
   picks robust when some kept numeric feature has more than 1 % of its values beyond the far
   Tukey fences (quartiles ± 3 IQR) after step 4, else standard;
8. categorical features are one-hot encoded over their ``max_levels`` most frequent levels
   plus ``"other"`` (or passed on as integer codes for k-prototypes);
9. optionally PCA (``pca`` = number of components, or the share of variance to keep).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["CustomerPreprocessor", "FeaturePlan"]

log = logging.getLogger(__name__)

_CORR_ROWS = 100_000  # rows used for skewness and correlations
# A skewed feature with at most this share of negative values gets the signed log.
MAX_NEGATIVE_SHARE = 0.05


def _apply_transform(transform: str, v):
    if transform == "log1p":
        return np.log1p(v)
    if transform == "signed_log1p":
        return np.sign(v) * np.log1p(np.abs(v))
    return v
_FAR_FENCE = 3.0  # Tukey's "far out" fence, in IQRs
_OUTLIER_SHARE = 0.01  # share beyond the far fences that makes "auto" scaling robust
_IQR_TO_STD = 1.349  # IQR of the standard normal distribution
MISSING_LEVEL = "missing"
OTHER_LEVEL = "other"


@dataclass(frozen=True)
class FeaturePlan:
    """What the preprocessor decided for one input feature.

    Attributes
    ----------
    feature : str
        Input column name.
    kind : {"numeric", "categorical", "id"}
        Detected kind.
    action : {"kept", "dropped", "id"}
        Whether the feature enters the model.
    reason : str
        Why (``"too_many_missing"``, ``"constant"``, ``"near_duplicate"`` or ``""``).
    duplicate_of : str or None
        The kept feature it duplicates, for near-duplicates.
    correlation : float or None
        Its correlation with ``duplicate_of``.
    transform : str
        ``"log1p"``, ``"signed_log1p"``, ``"none"``, ``"one_hot"`` or ``"codes"``.
    skewness : float or None
        Sample skewness before the transform (numeric features).
    missing_share : float
        Share of missing values.
    imputed_with : str or float or None
        The value missing entries are replaced by, when there are any.
    levels : tuple of str
        Encoded levels of a categorical feature (``"other"`` collects the rest).
    """

    feature: str
    kind: str
    action: str
    reason: str = ""
    duplicate_of: str | None = None
    correlation: float | None = None
    transform: str = "none"
    skewness: float | None = None
    missing_share: float = 0.0
    imputed_with: str | float | None = None
    levels: tuple[str, ...] = ()


def _as_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"Found array with shape {X.shape}; at least 1 sample and 1 "
                             "feature are required.")
        return X
    arr = check_array(X, dtype="numeric", ensure_all_finite="allow-nan")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def _skewness(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    sd = v.std()
    if v.size < 3 or sd == 0:
        return 0.0
    return float(np.mean(((v - v.mean()) / sd) ** 3))


class CustomerPreprocessor(TransformerMixin, BaseEstimator):
    """Choose and apply the preprocessing of a customer feature table, and show the choices.

    Parameters
    ----------
    id_columns : tuple of str, default ("customer_id",)
        Columns that identify customers; never used as features.
    categorical_features : list of str, optional
        Columns to treat as categorical; by default every non-numeric, non-boolean column.
    max_missing : float, default 0.5
        Features with a larger share of missing values are dropped.
    duplicate_threshold : float, default 0.95
        Absolute correlation at or above which a numeric feature is dropped as a
        near-duplicate of an earlier kept one.
    skew_threshold : float, default 1.0
        Skewness above which a non-negative feature reaching above 1 gets ``log1p``.
    log_transform : {"auto", "none"}, default "auto"
        ``"none"`` disables the log rule.
    scaling : {"standard", "robust", "auto", "none"}, default "standard"
        Scaling of numeric features (see the module notes for the "auto" rule). Standard is
        the default: robust scaling divides zero-inflated features (shares of rarely bought
        categories) by a tiny IQR and lets them dominate; on the generator's separated
        segments k-means recovered ARI 0.999 with standard and 0.65 with robust scaling.
    max_levels : int, default 10
        One-hot levels per categorical feature (most frequent first) before ``"other"``.
    categorical_encoding : {"one_hot", "codes"}, default "one_hot"
        ``"codes"`` appends integer level codes instead (input of k-prototypes).
    pca : int or float, optional
        Number of principal components, or the share of variance (0 < pca < 1) to keep.
    random_state : int, optional
        Seed of the row sample used for statistics and of the PCA.
    """

    def __init__(self, *, id_columns=("customer_id",), categorical_features=None,
                 max_missing=0.5, duplicate_threshold=0.95, skew_threshold=1.0,
                 log_transform="auto", scaling="standard", max_levels=10,
                 categorical_encoding="one_hot", pca=None, random_state=None):
        self.id_columns = id_columns
        self.categorical_features = categorical_features
        self.max_missing = max_missing
        self.duplicate_threshold = duplicate_threshold
        self.skew_threshold = skew_threshold
        self.log_transform = log_transform
        self.scaling = scaling
        self.max_levels = max_levels
        self.categorical_encoding = categorical_encoding
        self.pca = pca
        self.random_state = random_state

    # --- fitting ---------------------------------------------------------------------------

    def _validate_params(self) -> None:  # noqa: D401 - sklearn hook name
        if self.log_transform not in ("auto", "none"):
            raise ValueError(f"log_transform must be 'auto' or 'none', got {self.log_transform!r}")
        if self.scaling not in ("auto", "standard", "robust", "none"):
            raise ValueError(f"scaling must be auto/standard/robust/none, got {self.scaling!r}")
        if self.categorical_encoding not in ("one_hot", "codes"):
            raise ValueError("categorical_encoding must be 'one_hot' or 'codes', got "
                             f"{self.categorical_encoding!r}")
        if not 0.0 < float(self.duplicate_threshold) <= 1.0:
            raise ValueError("duplicate_threshold must be in (0, 1]")
        if not 0.0 <= float(self.max_missing) <= 1.0:
            raise ValueError("max_missing must be in [0, 1]")
        if self.pca is not None and not (
                (isinstance(self.pca, int | np.integer) and self.pca >= 1)
                or (isinstance(self.pca, float) and 0.0 < self.pca < 1.0)):
            raise ValueError("pca must be a positive int or a float in (0, 1)")

    def fit(self, X, y=None):
        """Decide the plan on ``X`` and learn imputation, scaling, encoding and PCA.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_features)
            Customer features, one row per customer.
        y : None
            Ignored.

        Returns
        -------
        self : CustomerPreprocessor
        """
        self._validate_params()
        df = _as_frame(X)
        if len(df) == 0:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
        rng = np.random.default_rng(self.random_state)
        sample = df if len(df) <= _CORR_ROWS else df.iloc[np.sort(
            rng.choice(len(df), _CORR_ROWS, replace=False))]
        ids = set(self.id_columns or ())
        cats = (set(self.categorical_features) if self.categorical_features is not None
                else {c for c in df.columns if c not in ids and _is_categorical(df[c])})
        plans: dict[str, FeaturePlan] = {}
        num_values: dict[str, np.ndarray] = {}
        self.num_stats_: dict[str, tuple[str, float]] = {}  # transform, median
        for col in df.columns:
            name = str(col)
            if col in ids:
                plans[name] = FeaturePlan(name, "id", "id")
                continue
            s = df[col]
            kind = "categorical" if col in cats else "numeric"
            miss = float(s.isna().mean())
            base = FeaturePlan(name, kind, "kept", missing_share=miss)
            if miss > self.max_missing:
                plans[name] = _replace(base, action="dropped", reason="too_many_missing")
                continue
            if s.nunique(dropna=True) <= 1:
                plans[name] = _replace(base, action="dropped", reason="constant")
                continue
            if kind == "categorical":
                plans[name] = self._plan_categorical(base, s)
                continue
            v = pd.to_numeric(sample[col], errors="coerce").to_numpy(dtype=float)
            med = float(np.nanmedian(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)))
            skew = _skewness(v)
            transform = "none"
            if (self.log_transform == "auto" and np.nanmax(v) > 1
                    and skew > self.skew_threshold):
                negative = float(np.nanmean(v < 0)) if np.isfinite(v).any() else 0.0
                transform = ("log1p" if np.nanmin(v) >= 0 else
                             "signed_log1p" if negative <= MAX_NEGATIVE_SHARE else "none")
            vt = _apply_transform(transform, v)
            num_values[name] = np.where(np.isnan(vt), _apply_transform(transform, med), vt)
            self.num_stats_[name] = (transform, med)
            plans[name] = _replace(base, transform=transform,
                                   skewness=round(skew, 3),
                                   imputed_with=med if miss > 0 else None)
        self._drop_duplicates(plans, num_values)
        self.plan_ = list(plans.values())
        self.numeric_features_ = [p.feature for p in self.plan_
                                  if p.kind == "numeric" and p.action == "kept"]
        self.categorical_features_ = [p.feature for p in self.plan_
                                      if p.kind == "categorical" and p.action == "kept"]
        if not self.numeric_features_ and not self.categorical_features_:
            raise ValueError("No usable feature: every column is constant, an identifier or "
                             "mostly missing.")
        self._fit_scaling(num_values)
        kept = self.numeric_features_
        self.correlation_ = (pd.DataFrame(np.corrcoef(np.column_stack(
            [num_values[c] for c in kept]), rowvar=False).reshape(len(kept), len(kept)),
            index=kept, columns=kept) if kept else pd.DataFrame())
        self.feature_names_in_ = np.asarray([str(c) for c in df.columns], dtype=object)
        self.n_features_in_ = df.shape[1]
        self.pca_ = None
        if self.pca is not None:
            self.pca_ = PCA(n_components=self.pca, random_state=self.random_state)
            self.pca_.fit(self._encode(df))
        for p in self.plan_:
            if p.action == "dropped":
                log.info("dropped feature %s (%s)", p.feature, p.reason)
        return self

    def _plan_categorical(self, base: FeaturePlan, s: pd.Series) -> FeaturePlan:
        counts = s.astype("string").fillna(MISSING_LEVEL).value_counts()
        levels = tuple(str(v) for v in counts.index[: int(self.max_levels)])
        return _replace(base, transform=self.categorical_encoding, levels=levels,
                        imputed_with=MISSING_LEVEL if base.missing_share > 0 else None)

    def _drop_duplicates(self, plans: dict[str, FeaturePlan],
                         num_values: dict[str, np.ndarray]) -> None:
        names = list(num_values)
        if len(names) < 2:
            return
        corr = np.corrcoef(np.column_stack([num_values[c] for c in names]), rowvar=False)
        corr = np.nan_to_num(corr)
        kept: list[int] = []
        for j, name in enumerate(names):
            hit = [i for i in kept if abs(corr[i, j]) >= self.duplicate_threshold]
            if hit:
                i = max(hit, key=lambda i: abs(corr[i, j]))
                plans[name] = _replace(plans[name], action="dropped", reason="near_duplicate",
                                       duplicate_of=names[i],
                                       correlation=round(float(corr[i, j]), 4))
                del num_values[name]
            else:
                kept.append(j)

    def _fit_scaling(self, num_values: dict[str, np.ndarray]) -> None:
        cols = self.numeric_features_
        method = self.scaling
        if method == "auto":
            method = "standard"
            for c in cols:
                q1, q3 = np.percentile(num_values[c], [25, 75])
                iqr = q3 - q1
                if iqr > 0 and np.mean((num_values[c] < q1 - _FAR_FENCE * iqr)
                                       | (num_values[c] > q3 + _FAR_FENCE * iqr)) > _OUTLIER_SHARE:
                    method = "robust"
                    break
        self.scaling_ = method
        centre, scale = np.zeros(len(cols)), np.ones(len(cols))
        for j, c in enumerate(cols):
            v = num_values[c]
            sd = v.std()
            if method == "standard":
                centre[j], scale[j] = v.mean(), sd
            elif method == "robust":
                q1, med, q3 = np.percentile(v, [25, 50, 75])
                # Binary or mostly-zero features have IQR 0: fall back to the deviation.
                centre[j], scale[j] = med, (q3 - q1) / _IQR_TO_STD if q3 > q1 else sd
        scale[~(scale > 0)] = 1.0
        self.center_, self.scale_ = centre, scale

    # --- transforming ----------------------------------------------------------------------

    def _numeric_block(self, df: pd.DataFrame) -> np.ndarray:
        cols = self.numeric_features_
        out = np.empty((len(df), len(cols)))
        for j, c in enumerate(cols):
            transform, med = self.num_stats_[c]
            v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
            v = np.where(np.isnan(v), med, v)
            if transform == "log1p":
                v = np.maximum(v, 0.0)  # new data below the training range: clip at zero
            out[:, j] = _apply_transform(transform, v)
        return (out - self.center_) / self.scale_

    def _categorical_levels(self, df: pd.DataFrame, name: str) -> np.ndarray:
        """Level index per row: position in ``levels``, or len(levels) for "other"."""
        plan = self._plan_of(name)
        s = df[name].astype("string").fillna(MISSING_LEVEL).to_numpy(dtype=object)
        lookup = {lv: i for i, lv in enumerate(plan.levels)}
        other = len(plan.levels)
        return np.fromiter((lookup.get(v, other) for v in s), dtype=np.int64, count=len(s))

    def _plan_of(self, name: str) -> FeaturePlan:
        return next(p for p in self.plan_ if p.feature == name)

    def _encode(self, df: pd.DataFrame) -> np.ndarray:
        blocks = [self._numeric_block(df)]
        for c in self.categorical_features_:
            codes = self._categorical_levels(df, c)
            if self.categorical_encoding == "codes":
                blocks.append(codes[:, None].astype(float))
            else:
                n_levels = len(self._plan_of(c).levels) + 1
                blocks.append(np.eye(n_levels)[codes])
        return np.hstack(blocks)

    def transform(self, X) -> np.ndarray:
        """Apply the plan.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Same columns as in ``fit``.

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_features_out)
            Scaled numeric features, then the encoded categorical ones (or the principal
            components when ``pca`` is set).
        """
        check_is_fitted(self, "plan_")
        df = _as_frame(X)
        if df.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {df.shape[1]} features, but CustomerPreprocessor is "
                             f"expecting {self.n_features_in_} features as input.")
        if not isinstance(X, pd.DataFrame):
            df.columns = list(self.feature_names_in_)
        out = self._encode(df)
        return self.pca_.transform(out) if self.pca_ is not None else out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        numpy.ndarray of str
        """
        check_is_fitted(self, "plan_")
        if self.pca_ is not None:
            return np.asarray([f"pc{i + 1}" for i in range(self.pca_.n_components_)], dtype=object)
        names = list(self.numeric_features_)
        for c in self.categorical_features_:
            levels = self._plan_of(c).levels
            if self.categorical_encoding == "codes":
                names.append(c)
            else:
                names += [f"{c}={lv}" for lv in levels] + [f"{c}={OTHER_LEVEL}"]
        return np.asarray(names, dtype=object)

    @property
    def categorical_indices_(self) -> list[int]:
        """Output columns holding categorical codes (``categorical_encoding="codes"``)."""
        check_is_fitted(self, "plan_")
        if self.categorical_encoding != "codes" or self.pca_ is not None:
            return []
        start = len(self.numeric_features_)
        return list(range(start, start + len(self.categorical_features_)))

    def describe(self) -> pd.DataFrame:
        """The plan as a table: one row per input column, with the decision and its reason.

        Returns
        -------
        pandas.DataFrame
            Columns: feature, kind, action, reason, duplicate_of, correlation, transform,
            skewness, missing_share, imputed_with, levels, plus ``scaling`` (the method used
            for kept numeric features).
        """
        check_is_fitted(self, "plan_")
        table = pd.DataFrame([asdict(p) for p in self.plan_])
        table["scaling"] = np.where((table["kind"] == "numeric") & (table["action"] == "kept"),
                                    self.scaling_, "")
        return table

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


def _replace(plan: FeaturePlan, **changes) -> FeaturePlan:
    return FeaturePlan(**{**asdict(plan), **changes})
