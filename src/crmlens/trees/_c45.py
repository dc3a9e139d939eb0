"""C4.5 (Quinlan, 1993): gain ratio, thresholds, missing values, pessimistic pruning."""

from __future__ import annotations

from numbers import Real

from sklearn.utils._param_validation import Interval

from crmlens.trees._entropy_tree import EntropyTreeClassifier
from crmlens.trees._pruning import prune


class C45Classifier(EntropyTreeClassifier):
    """C4.5 decision tree.

    * **Test selection.** Among the tests whose information gain is at least the average gain
      of all candidate tests at the node, the one with the largest gain ratio
      (gain / split information) wins.
    * **Categorical features** split into one branch per category present at the node; at
      least two branches must hold ``min_samples_leaf`` cases.
    * **Numeric features** get a binary test ``x <= t``; the threshold is the midpoint with the
      largest gain (C4.5 itself uses the largest data value below it; both send the training
      cases the same way). With ``mdl_correction`` the gain is reduced by ``log2(T) / N``
      (T candidate thresholds, N cases at the node), as in C4.5 Release 8, which stops numeric
      features with many distinct values from winning on noise.
    * **Missing values** (NaN, or None in a categorical column): gains are computed on the cases
      with a known value and multiplied by their share; the split information counts the
      unknown cases as one more outcome; the unknown cases go down every branch with a weight
      equal to the branch's share of the known cases; when predicting, a case with a missing
      (or unseen) value is sent down every branch and the leaf distributions are combined with
      the same weights.
    * **Pruning.** Pessimistic error pruning by subtree replacement with confidence factor
      ``confidence_factor`` (see :mod:`crmlens.trees._pruning`); subtree raising is not done.

    Parameters
    ----------
    max_depth : int or None, default=None
    min_samples_split : float, default=4
        Nodes with less (weighted) cases are not split (Quinlan: twice the minimum leaf).
    min_samples_leaf : float, default=2
        Quinlan's MINOBJS.
    confidence_factor : float, default=0.25
        Confidence of the pessimistic error estimate; smaller values prune more.
    pruning : bool, default=True
    mdl_correction : bool, default=True

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_classes_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when ``X`` was a DataFrame with string column names.
    root_ : Node
    columns_ : ColumnInfo
    n_pruned_ : int
        Number of subtrees replaced by leaves.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0], [3.0], [10.0], [11.0], [12.0]])
    >>> tree = C45Classifier(min_samples_leaf=1).fit(X, [0, 0, 0, 1, 1, 1])
    >>> float(tree.root_.threshold)
    6.5
    """

    _parameter_constraints: dict = {
        **EntropyTreeClassifier._parameter_constraints,
        "confidence_factor": [Interval(Real, 0, 1, closed="neither")],
        "pruning": ["boolean"],
        "mdl_correction": ["boolean"],
    }
    _criterion = "gain_ratio"
    _allow_nan = True
    _missing_to_all_branches = True
    _mdl_correction = True

    def __init__(self, *, max_depth=None, min_samples_split=4, min_samples_leaf=2,
                 confidence_factor=0.25, pruning=True, mdl_correction=True):
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.confidence_factor = confidence_factor
        self.pruning = pruning
        self.mdl_correction = mdl_correction

    def _post_grow(self) -> None:
        self.n_pruned_ = prune(self.root_, self.confidence_factor) if self.pruning else 0
