"""Shared machinery of ID3 and C4.5: growing, predicting, introspection."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from crmlens.trees._dataset import ColumnInfo, encode_fit, encode_predict
from crmlens.trees._node import CATEGORICAL, LEAF, NUMERIC, Node
from crmlens.trees._splitter import Split, categorical_split, numeric_split


class EntropyTreeClassifier(ClassifierMixin, BaseEstimator):
    """Base class; use :class:`ID3Classifier` or :class:`C45Classifier`."""

    _parameter_constraints: dict = {
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_samples_split": [Interval(Real, 0, None, closed="neither")],
        "min_samples_leaf": [Interval(Real, 0, None, closed="neither")],
    }
    # set by subclasses
    _criterion = "gain"
    _allow_nan = False
    _missing_to_all_branches = False
    _mdl_correction = False

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, sample_weight=None):
        """Grow the tree on ``X``, ``y``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            A DataFrame may mix categorical (object, string, category, bool) and numeric
            columns; any other input is taken as all numeric.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Case weights (all 1 by default); ``min_samples_*`` compare weights.

        Returns
        -------
        self
        """
        self._validate_params()
        matrix, info = encode_fit(self, X, allow_nan=self._allow_nan)
        y = column_or_1d(y, warn=True)
        check_consistent_length(matrix, y)
        check_classification_targets(y)
        self.classes_, y_codes = np.unique(y, return_inverse=True)
        weights = _check_sample_weight(sample_weight, matrix, dtype=np.float64)
        keep = weights > 0
        if not keep.all():
            matrix, y_codes, weights = matrix[keep], y_codes[keep], weights[keep]
        self.n_classes_ = len(self.classes_)
        self.columns_ = info
        self.root_ = self._grow(matrix, y_codes.astype(np.intp), weights, info)
        self._post_grow()
        return self

    def _post_grow(self) -> None:
        """Hook for pruning (C4.5)."""

    def _choose(self, splits: list[Split]) -> Split | None:
        if not splits:
            return None
        if self._criterion == "gain":
            return max(splits, key=lambda s: s.gain)
        # C4.5: the best gain ratio among tests with at least average gain
        average = np.mean([s.gain for s in splits])
        eligible = [s for s in splits if s.gain >= average - 1e-12]
        return max(eligible, key=lambda s: s.gain_ratio)

    def _grow(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, info: ColumnInfo) -> Node:
        n_classes = self.n_classes_
        max_depth = np.inf if self.max_depth is None else self.max_depth
        min_leaf = float(self.min_samples_leaf)
        min_split = float(self.min_samples_split)
        n_categories = [0 if c is None else len(c) for c in info.categories]
        root = Node(value=np.zeros(n_classes), depth=0)
        stack = [(root, np.arange(X.shape[0]), w)]
        while stack:
            node, idx, weights = stack.pop()
            labels = y[idx]
            node.value = np.bincount(labels, weights=weights, minlength=n_classes)
            node_weight = float(weights.sum())
            if (node.depth >= max_depth or node_weight < min_split
                    or node.value.max() >= node_weight * (1 - 1e-12)):
                continue
            splits = []
            for feature in range(X.shape[1]):
                column = X[idx, feature]
                if info.categorical[feature]:
                    split = categorical_split(
                        column, labels, weights, feature=feature,
                        n_categories=n_categories[feature], n_classes=n_classes,
                        node_weight=node_weight, min_leaf=min_leaf)
                else:
                    split = numeric_split(
                        column, labels, weights, feature=feature, n_classes=n_classes,
                        node_weight=node_weight, min_leaf=min_leaf,
                        mdl_correction=self._mdl_correction and self.mdl_correction)
                if split is not None:
                    splits.append(split)
            node.scores = {s.feature: (s.gain, s.gain_ratio) for s in splits}
            best = self._choose(splits)
            if best is None:
                continue
            node.feature, node.gain, node.gain_ratio = best.feature, best.gain, best.gain_ratio
            node.branch_weights = best.branch_weights
            column = X[idx, best.feature]
            known = ~np.isnan(column)
            if info.categorical[best.feature]:
                node.kind, node.codes = CATEGORICAL, best.codes
                masks = [known & (column == code) for code in best.codes]
            else:
                node.kind, node.threshold = NUMERIC, best.threshold
                masks = [known & (column <= best.threshold), known & (column > best.threshold)]
            missing = np.flatnonzero(~known)
            for mask, share in zip(masks, best.branch_weights):
                child_idx, child_w = idx[mask], weights[mask]
                if missing.size:  # C4.5: unknown cases go down every branch, fractionally
                    child_idx = np.concatenate([child_idx, idx[missing]])
                    child_w = np.concatenate([child_w, weights[missing] * share])
                child = Node(value=np.zeros(n_classes), depth=node.depth + 1)
                node.children.append(child)
                stack.append((child, child_idx, child_w))
        return root

    # ------------------------------------------------------------ predict
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities: the class distribution of the leaf each case reaches.

        A case with a missing value (or a category not seen at that node) is sent down every
        branch with the training shares (C4.5), or stops at the node and takes its class
        distribution (ID3).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        matrix = encode_predict(self, X, self.columns_, allow_nan=self._allow_nan)
        proba = np.zeros((matrix.shape[0], self.n_classes_))
        stack = [(self.root_, np.arange(matrix.shape[0]), np.ones(matrix.shape[0]))]
        while stack:
            node, idx, weights = stack.pop()
            if idx.size == 0:
                continue
            if node.kind == LEAF:
                proba[idx] += weights[:, None] * _distribution(node)
                continue
            column = matrix[idx, node.feature]
            if node.kind == NUMERIC:
                known = ~np.isnan(column)
                branch = np.where(column > node.threshold, 1, 0)
            else:
                lookup = np.full(len(self.columns_.categories[node.feature]) + 1, -1)
                lookup[node.codes] = np.arange(len(node.codes))
                codes = np.where(np.isnan(column), -1, column).astype(np.intp)
                branch = lookup[codes]  # code -1 (missing) reads the trailing -1
                known = branch >= 0
            for position, child in enumerate(node.children):
                take = known & (branch == position)
                stack.append((child, idx[take], weights[take]))
            unknown = np.flatnonzero(~known)
            if unknown.size == 0:
                continue
            if self._missing_to_all_branches:
                for child, share in zip(node.children, node.branch_weights):
                    stack.append((child, idx[unknown], weights[unknown] * share))
            else:
                proba[idx[unknown]] += weights[unknown, None] * _distribution(node)
        return proba

    def predict(self, X) -> np.ndarray:
        """Most probable class of each case.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # ------------------------------------------------------- introspection
    def get_depth(self) -> int:
        """Depth of the tree (0 for a single leaf)."""
        check_is_fitted(self)
        return max(node.depth for node in self.root_.walk())

    def get_n_leaves(self) -> int:
        """Number of leaves."""
        check_is_fitted(self)
        return sum(node.is_leaf for node in self.root_.walk())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


def _distribution(node: Node) -> np.ndarray:
    total = node.value.sum()
    if total <= 0:
        return np.full(node.value.shape, 1.0 / node.value.size)
    return node.value / total
