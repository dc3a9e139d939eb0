"""CART: scikit-learn's DecisionTreeClassifier, with a note of which features had gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier


class CARTClassifier(DecisionTreeClassifier):
    """CART (Breiman et al., 1984) as implemented by scikit-learn.

    This *is* :class:`sklearn.tree.DecisionTreeClassifier` (same parameters, same defaults,
    Gini impurity, binary splits ``x <= t`` on numeric features, cost-complexity pruning with
    ``ccp_alpha``); it only records, at fit time, which features had missing values, so that
    :func:`crmlens.trees.export_rules` says "or missing" only where the training data could
    justify it. Categorical features must be encoded by the caller (see
    :func:`crmlens.segment.explain.explain_segments` for one-hot encoding mapped back to
    readable rules).

    Attributes
    ----------
    features_with_missing_ : ndarray of bool, shape (n_features_in_,)
        True for features that had a missing value in the training data.

    Examples
    --------
    >>> import numpy as np
    >>> tree = CARTClassifier(max_depth=1).fit(np.array([[1.0], [2.0], [8.0], [9.0]]),
    ...                                        [0, 0, 1, 1])
    >>> float(tree.tree_.threshold[0])
    5.0
    """

    def fit(self, X, y, sample_weight=None, check_input=True):
        """Fit the scikit-learn tree and note the features with missing values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        check_input : bool, default=True

        Returns
        -------
        self
        """
        super().fit(X, y, sample_weight=sample_weight, check_input=check_input)
        if isinstance(X, pd.DataFrame):
            missing = X.isna().to_numpy().any(axis=0)
        elif hasattr(X, "toarray") or hasattr(X, "tocsr"):  # sparse: never NaN-aware here
            missing = np.zeros(self.n_features_in_, dtype=bool)
        else:
            values = np.asarray(X, dtype=np.float64)
            missing = np.isnan(values).any(axis=0)
        self.features_with_missing_ = np.asarray(missing, dtype=bool)
        return self
