"""Rules read off a tree: a conjunction of conditions and the class it predicts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

OPERATORS = ("<=", ">", "==", "in")


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_json_value(v) for v in value]
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Condition:
    """One test on a path: ``feature <operator> value``.

    Attributes
    ----------
    feature : str
        Feature name.
    operator : {"<=", ">", "==", "in"}
    value : float, object or tuple
        Threshold, category, or tuple of categories for ``in``.
    column : int
        Position of the feature in the matrix the tree was fitted on (used for numpy input).
    missing : bool
        Whether a missing value also satisfies the condition (the tree sends missing values
        this way).
    integer : bool
        The feature takes whole-number values only (``> 5.5`` reads ``>= 6``).
    """

    feature: str
    operator: str
    value: Any
    column: int = -1
    missing: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ValueError(f"operator must be one of {OPERATORS}, got {self.operator!r}")

    def mask(self, X) -> np.ndarray:
        """Which rows of ``X`` (DataFrame by name, else array by ``column``) satisfy it."""
        if isinstance(X, pd.DataFrame):
            series = X[self.feature] if self.feature in X.columns else X.iloc[:, self.column]
        else:
            series = pd.Series(np.asarray(X)[:, self.column])
        if self.operator in ("<=", ">"):
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64,
                                                                     na_value=np.nan)
            with np.errstate(invalid="ignore"):
                hit = values <= self.value if self.operator == "<=" else values > self.value
            absent = np.isnan(values)
        else:
            choices = [self.value] if self.operator == "==" else list(self.value)
            hit = series.isin(choices).to_numpy(dtype=bool)
            absent = series.isna().to_numpy(dtype=bool)
        return (hit & ~absent) | (absent & self.missing)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"feature": self.feature, "operator": self.operator,
                "value": _json_value(self.value), "missing": self.missing}


@dataclass(frozen=True)
class Rule:
    """A root-to-leaf path as a rule.

    Attributes
    ----------
    conditions : tuple of Condition
        Simplified: one condition per feature and direction.
    prediction : object
        The class predicted by the leaf.
    support : float
        Number of (training) samples in the leaf (weighted).
    coverage : float
        Share of all samples of the predicted class that the rule covers.
    precision : float
        Share of the samples in the leaf that belong to the predicted class.
    class_counts : dict
        Samples of each class in the leaf.
    """

    conditions: tuple[Condition, ...]
    prediction: Any
    support: float
    coverage: float
    precision: float
    class_counts: dict = field(default_factory=dict)

    def matches(self, X) -> np.ndarray:
        """Boolean mask of the rows of ``X`` that satisfy every condition."""
        mask = np.ones(len(X), dtype=bool)
        for condition in self.conditions:
            mask &= condition.mask(X)
        return mask

    def evaluate(self, X, y) -> Rule:
        """The same rule with support, coverage and precision measured on ``X``, ``y``."""
        y = np.asarray(y)
        mask = self.matches(X)
        hits = mask & (y == self.prediction)
        of_class = int(np.count_nonzero(y == self.prediction))
        support = int(np.count_nonzero(mask))
        values, counts = np.unique(y[mask], return_counts=True)
        return replace(
            self, support=support,
            precision=float(hits.sum() / support) if support else 0.0,
            coverage=float(hits.sum() / of_class) if of_class else 0.0,
            class_counts={_json_value(v): int(c) for v, c in zip(values, counts)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"conditions": [c.to_dict() for c in self.conditions],
                "prediction": _json_value(self.prediction),
                "support": _json_value(self.support), "coverage": self.coverage,
                "precision": self.precision,
                "class_counts": {str(_json_value(k)): _json_value(v)
                                 for k, v in self.class_counts.items()}}


def simplify(conditions) -> tuple[Condition, ...]:
    """Merge conditions on the same feature and direction along one path.

    ``x <= 60`` and ``x <= 30`` give ``x <= 30``; ``x > 2`` and ``x > 5`` give ``x > 5``;
    category sets intersect (``in {a, b}`` and ``== a`` give ``== a``). A condition accepts
    missing values only if every merged one did. Order of first appearance is kept.
    """
    merged: dict[tuple, Condition] = {}
    for condition in conditions:
        direction = "set" if condition.operator in ("==", "in") else condition.operator
        key = (condition.feature, direction)
        previous = merged.get(key)
        merged[key] = condition if previous is None else _combine(previous, condition)
    return tuple(merged.values())


def _combine(a: Condition, b: Condition) -> Condition:
    missing = a.missing and b.missing
    if a.operator == "<=":
        return replace(a, value=min(a.value, b.value), missing=missing)
    if a.operator == ">":
        return replace(a, value=max(a.value, b.value), missing=missing)
    first = [a.value] if a.operator == "==" else list(a.value)
    second = [b.value] if b.operator == "==" else list(b.value)
    common = tuple(v for v in first if v in second)
    if len(common) == 1:
        return replace(a, operator="==", value=common[0], missing=missing)
    return replace(a, operator="in", value=common, missing=missing)
