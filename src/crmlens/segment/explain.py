"""Explain segments as rules: a shallow tree predicting segment membership from the features.

Whatever made the segments (RFM cells, k-means, a Gaussian mixture ...), a depth-3 tree fitted
to predict them gives each segment one to three readable rules, e.g. "recency ≤ 30 days and
orders ≥ 6 → Segment 3, covers 81 %, precision 94 %". On large tables the tree is fitted on a
stratified sample; coverage, precision and the tree's fidelity (accuracy in reproducing the
segments) are always measured on every row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from crmlens.errors import InputError
from crmlens.i18n import normalize_lang, t
from crmlens.trees import (
    C45Classifier,
    CARTClassifier,
    Condition,
    ID3Classifier,
    Rule,
    export_rules,
    format_rule,
    simplify,
)
from crmlens.trees._formatting import FeatureLabels, format_percent
from crmlens.trees._rule import _json_value

logger = logging.getLogger(__name__)

METHODS = ("cart", "c45", "id3")


@dataclass(frozen=True)
class ExplainedRule:
    """A rule of one segment, with its metrics on all rows and its text."""

    text: str
    rule: Rule

    @property
    def coverage(self) -> float:
        return self.rule.coverage

    @property
    def precision(self) -> float:
        return self.rule.precision

    @property
    def support(self) -> int:
        return int(self.rule.support)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "support": self.support, "coverage": self.coverage,
                "precision": self.precision,
                "conditions": [c.to_dict() for c in self.rule.conditions]}


@dataclass(frozen=True)
class SegmentRules:
    """The best rules of one segment."""

    segment: Any
    name: str
    size: int
    share: float
    rules: tuple[ExplainedRule, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"segment": _json_value(self.segment), "name": self.name, "size": self.size,
                "share": self.share, "rules": [r.to_dict() for r in self.rules]}


@dataclass(frozen=True)
class SegmentExplanation:
    """Result of :func:`explain_segments`.

    Attributes
    ----------
    segments : tuple of SegmentRules
        One entry per segment, in label order; ``rules`` is empty when no leaf predicts it.
    fidelity : float
        Share of all rows whose segment the tree predicts correctly.
    rules : tuple of Rule
        Every leaf of the tree as a rule, metrics measured on all rows.
    method, max_depth, n_rows, n_fit, lang, features
        How the tree was fitted: ``n_fit < n_rows`` means on a sample.
    tree : estimator
        The fitted tree (not part of :meth:`to_dict`).
    """

    segments: tuple[SegmentRules, ...]
    fidelity: float
    rules: tuple[Rule, ...]
    method: str
    max_depth: int
    n_rows: int
    n_fit: int
    lang: str
    features: tuple[str, ...]
    tree: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the tree itself is left out)."""
        return {"method": self.method, "max_depth": self.max_depth, "n_rows": self.n_rows,
                "n_fit": self.n_fit, "sampled": self.n_fit < self.n_rows,
                "fidelity": self.fidelity, "lang": self.lang, "features": list(self.features),
                "segments": [s.to_dict() for s in self.segments],
                "rules": [r.to_dict() for r in self.rules]}

    def to_text(self) -> str:
        """A few lines for a console or a report."""
        lines = [t("trees.explain.fidelity", lang=self.lang,
                   fidelity=format_percent(self.fidelity, self.lang), depth=self.max_depth,
                   method=self.method)]
        if self.n_fit < self.n_rows:
            lines.append(t("trees.explain.sampled", lang=self.lang, n_fit=f"{self.n_fit:,}",
                           n_rows=f"{self.n_rows:,}"))
        for segment in self.segments:
            if not segment.rules:
                lines.append(t("trees.explain.no_rule", lang=self.lang, segment=segment.name))
            lines.extend(r.text for r in segment.rules)
        return "\n".join(lines)


def explain_segments(X: pd.DataFrame, labels, *, max_depth: int = 3,
                     min_coverage: float = 0.05, max_rules: int = 3, method: str = "cart",
                     feature_labels: FeatureLabels = None,
                     segment_names: Mapping[Any, Any] | Callable[[Any], str] | None = None,
                     lang: str = "en", random_state: int | None = 0,
                     sample_size: int = 50_000,
                     min_samples_leaf: int | None = None) -> SegmentExplanation:
    """Describe each segment by the rules of a shallow tree that predicts it.

    Parameters
    ----------
    X : DataFrame
        One row per customer: numeric and categorical (object, string, category, bool)
        features; other columns (dates, ...) are ignored.
    labels : array-like of shape (n_rows,)
        Segment of each row.
    max_depth : int, default=3
        Depth of the tree: at most this many conditions per rule.
    min_coverage : float, default=0.05
        A rule is listed when it covers at least this share of its segment; a segment whose
        rules all cover less keeps its single best rule.
    max_rules : int, default=3
        Rules listed per segment, by decreasing coverage.
    method : {"cart", "c45", "id3"}, default="cart"
        The learner. ``cart`` one-hot encodes categorical features and maps the tests back to
        ``feature = value`` / ``feature is one of ...``; ``id3`` needs complete data.
    feature_labels : mapping or callable, optional
        Label and unit of each feature, e.g. ``{"recency_days": ("Recency", "days")}``, a
        ``{"label": ..., "unit": ..., "kind": "money"}`` mapping, or a callable returning such a
        spec (or a feature-catalogue definition) for a feature name. Labels and units may be
        ``{"en": ..., "zh": ...}``. Unit "currency"/"money" (or a currency code) shows two
        decimals; integer-valued features are shown without decimals.
    segment_names : mapping or callable, optional
        Display name of each segment; default "Segment 3" / "细分 3" for numbers, the label
        itself otherwise.
    lang : {"en", "zh"}, default="en"
    random_state : int or None, default=0
        Seed of the sample (and of CART's tie-breaking).
    sample_size : int, default=50000
        Above this many rows the tree is fitted on a stratified sample of about this size.
    min_samples_leaf : int, optional
        Smallest leaf; default 0.5 % of the fitted rows (at least 5), so that rules describe
        groups rather than single customers.

    Returns
    -------
    SegmentExplanation
    """
    if method not in METHODS:
        raise InputError("error.trees.method", method=method)
    lang = normalize_lang(lang)
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(np.asarray(X)).rename(columns=lambda i: f"x{i}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(X):
        raise InputError("error.trees.labels_length", n_labels=len(labels), n_rows=len(X))
    X = _usable_columns(X)
    n_rows = len(X)
    fit_rows = _stratified_sample(labels, sample_size, random_state)
    n_fit = len(fit_rows)
    leaf = min_samples_leaf if min_samples_leaf is not None else max(5, round(0.005 * n_fit))
    integer = {c: _is_integer(X[c]) for c in X.columns}

    if method == "cart":
        matrix, decode = _one_hot(X)
        tree = CARTClassifier(max_depth=max_depth, min_samples_leaf=leaf,
                              random_state=random_state)
        tree.fit(matrix.iloc[fit_rows], labels[fit_rows])
        raw_rules = [replace(r, conditions=simplify(decode(c) for c in r.conditions))
                     for r in export_rules(tree)]
        predicted = tree.predict(matrix)
    else:
        learner = C45Classifier if method == "c45" else ID3Classifier
        tree = learner(max_depth=max_depth, min_samples_leaf=leaf)
        tree.fit(X.iloc[fit_rows], labels[fit_rows])
        raw_rules = export_rules(tree)
        predicted = tree.predict(X)
    raw_rules = [replace(r, conditions=tuple(
        replace(c, integer=integer.get(c.feature, False)) for c in r.conditions))
        for r in raw_rules]
    rules = tuple(r.evaluate(X, labels) for r in raw_rules)
    fidelity = float(np.mean(predicted == labels))

    segments = []
    values, sizes = np.unique(labels, return_counts=True)
    for value, size in zip(values, sizes):
        name = _segment_name(value, segment_names, lang)
        own = sorted((r for r in rules if r.prediction == value and r.support > 0),
                     key=lambda r: (-r.coverage, -r.precision))
        chosen = [r for r in own if r.coverage >= min_coverage][:max_rules] or own[:1]
        explained = tuple(
            ExplainedRule(text=format_rule(r, lang=lang, labels=feature_labels,
                                           class_labels=lambda _v, n=name: n), rule=r)
            for r in chosen)
        segments.append(SegmentRules(segment=_json_value(value), name=name, size=int(size),
                                     share=float(size / n_rows), rules=explained))
    logger.info("explained %d segments with a %s tree of depth %d: fidelity %.3f",
                len(segments), method, max_depth, fidelity)
    return SegmentExplanation(
        segments=tuple(segments), fidelity=fidelity, rules=rules, method=method,
        max_depth=max_depth, n_rows=n_rows, n_fit=n_fit, lang=lang,
        features=tuple(str(c) for c in X.columns), tree=tree)


def _usable_columns(X: pd.DataFrame) -> pd.DataFrame:
    keep = []
    for name in X.columns:
        series = X[name]
        usable = (pd.api.types.is_numeric_dtype(series.dtype)
                  or pd.api.types.is_bool_dtype(series.dtype)
                  or isinstance(series.dtype, pd.CategoricalDtype)
                  or pd.api.types.is_object_dtype(series.dtype)
                  or pd.api.types.is_string_dtype(series.dtype))
        if usable and series.notna().any():
            keep.append(name)
    if not keep:
        raise InputError("error.trees.no_features")
    out = X[keep]
    out.columns = [str(c) for c in keep]
    return out


def _is_integer(series: pd.Series) -> bool:
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series):
        return False
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[~np.isnan(values)]
    return bool(np.all(values == np.round(values)))


def _stratified_sample(labels: np.ndarray, size: int, seed: int | None) -> np.ndarray:
    """Row positions of a sample of about ``size`` rows, every segment represented."""
    n = len(labels)
    if n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    _, codes = np.unique(labels, return_inverse=True)
    picked = []
    for code in range(codes.max() + 1):
        rows = np.flatnonzero(codes == code)
        take = min(len(rows), max(50, round(len(rows) * size / n)))
        picked.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(picked))


def _one_hot(X: pd.DataFrame):
    """Numeric matrix for CART, and a function mapping its conditions back to ``X``'s columns."""
    columns: dict[str, Any] = {}
    origin: dict[str, tuple[str, Any, tuple, bool]] = {}
    for name in X.columns:
        series = X[name]
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
            columns[name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        categories = tuple(_json_value(v) for v in pd.unique(series.dropna()))
        has_missing = bool(series.isna().any())
        for category in categories:
            key = f"{name}={category}"
            columns[key] = (series == category).to_numpy(dtype=np.float64)
            origin[key] = (name, category, categories, has_missing)
    matrix = pd.DataFrame(columns, index=X.index)
    positions = {name: i for i, name in enumerate(X.columns)}

    def decode(condition: Condition) -> Condition:
        if condition.feature not in origin:
            return replace(condition, column=positions[condition.feature])
        name, category, categories, has_missing = origin[condition.feature]
        if condition.operator == ">":  # indicator > 0.5: the row has this category
            return Condition(name, "==", category, column=positions[name])
        others = tuple(c for c in categories if c != category)
        if len(others) == 1:
            return Condition(name, "==", others[0], column=positions[name], missing=has_missing)
        return Condition(name, "in", others, column=positions[name], missing=has_missing)

    return matrix, decode


def _segment_name(value: Any, names, lang: str) -> str:
    if callable(names) and not isinstance(names, Mapping):
        return str(names(value))
    if isinstance(names, Mapping) and value in names:
        text = names[value]
        return str(text.get(lang) or text.get("en")) if isinstance(text, Mapping) else str(text)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return t("trees.segment", lang=lang, name=int(value))
    return str(value)
