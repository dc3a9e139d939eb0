"""One read-only view over our trees (ID3/C4.5) and scikit-learn's, for rule and text export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted

from crmlens.trees._entropy_tree import EntropyTreeClassifier
from crmlens.trees._node import NUMERIC
from crmlens.trees._rule import Condition


@dataclass
class TreeView:
    """Nodes are opaque handles; ``branches`` gives (condition, child) pairs."""

    tree: Any
    feature_names: list[str]
    classes: list[Any]

    @property
    def root(self):
        return self.tree.root_ if self._ours else 0

    @property
    def _ours(self) -> bool:
        return isinstance(self.tree, EntropyTreeClassifier)

    def counts(self, node) -> np.ndarray:
        """Weighted class counts of the training samples at ``node``."""
        if self._ours:
            return node.value
        t = self.tree.tree_
        # scikit-learn >= 1.4 (we need >= 1.5) stores class fractions
        return t.value[node, 0] * t.weighted_n_node_samples[node]

    def branches(self, node) -> list[tuple[Condition, Any]]:
        if self._ours:
            return self._our_branches(node)
        t = self.tree.tree_
        left, right = t.children_left[node], t.children_right[node]
        if left == -1:
            return []
        feature = int(t.feature[node])
        name = self.feature_names[feature]
        threshold = float(t.threshold[node])
        goes_left = bool(getattr(t, "missing_go_to_left", np.zeros(t.node_count))[node])
        had_missing = bool(getattr(self.tree, "features_with_missing_",
                                   np.ones(len(self.feature_names), dtype=bool))[feature])
        return [
            (Condition(name, "<=", threshold, column=feature,
                       missing=had_missing and goes_left), left),
            (Condition(name, ">", threshold, column=feature,
                       missing=had_missing and not goes_left), right),
        ]

    def _our_branches(self, node) -> list[tuple[Condition, Any]]:
        if node.is_leaf:
            return []
        feature = node.feature
        name = self.feature_names[feature]
        if node.kind == NUMERIC:
            integer = bool(self.tree.columns_.integer[feature])
            return [(Condition(name, "<=", node.threshold, column=feature, integer=integer),
                     node.children[0]),
                    (Condition(name, ">", node.threshold, column=feature, integer=integer),
                     node.children[1])]
        categories = self.tree.columns_.categories[feature]
        return [(Condition(name, "==", categories[code], column=feature), child)
                for code, child in zip(node.codes, node.children)]


def tree_view(tree, feature_names: Sequence[str] | None = None,
              class_names: Sequence[Any] | Mapping[Any, Any] | None = None) -> TreeView:
    """Check ``tree`` is a fitted ID3/C4.5/CART classifier and wrap it."""
    if not isinstance(tree, (EntropyTreeClassifier, DecisionTreeClassifier)):
        raise TypeError("export needs an ID3Classifier, C45Classifier, CARTClassifier or a "
                        f"scikit-learn DecisionTreeClassifier, got {type(tree).__name__}")
    check_is_fitted(tree)
    n = tree.n_features_in_
    if feature_names is None:
        names = getattr(tree, "feature_names_in_", None)
        feature_names = [str(v) for v in names] if names is not None \
            else [f"x{i}" for i in range(n)]
    elif len(feature_names) != n:
        raise ValueError(f"feature_names has {len(feature_names)} names, the tree {n} features")
    classes = list(tree.classes_)
    if isinstance(class_names, Mapping):
        classes = [class_names.get(c, c) for c in classes]
    elif class_names is not None:
        if len(class_names) != len(classes):
            raise ValueError(f"class_names has {len(class_names)} names, the tree "
                             f"{len(classes)} classes")
        classes = list(class_names)
    return TreeView(tree=tree, feature_names=list(feature_names), classes=classes)
