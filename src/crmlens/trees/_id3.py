"""ID3 (Quinlan, 1986): information gain, multiway splits on categorical features."""

from __future__ import annotations

from crmlens.trees._entropy_tree import EntropyTreeClassifier


class ID3Classifier(EntropyTreeClassifier):
    """ID3 decision tree: each node tests the feature with the largest information gain.

    Categorical features (object, string, category or bool columns of a DataFrame) split into
    one branch per category present at the node. ID3 itself knows only categorical features;
    here a numeric feature is discretized at the node by the binary threshold ``x <= t`` with
    the largest gain (``t`` a midpoint between consecutive distinct values), and can be tested
    again deeper in the tree. No pruning; missing values are rejected (use
    :class:`C45Classifier`). A category not seen at a node when predicting stops the case at
    that node, which then predicts its own class distribution.

    Parameters
    ----------
    max_depth : int or None, default=None
        Maximum depth; None grows until the leaves are pure or no test has positive gain.
    min_samples_split : float, default=2
        A node with less (weighted) cases is not split.
    min_samples_leaf : float, default=1
        A numeric test needs this weight on both sides; a categorical test needs it in at
        least two branches.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_classes_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when ``X`` was a DataFrame with string column names.
    root_ : Node
        The tree; each node holds its class counts and the scores of every candidate test.
    columns_ : ColumnInfo
        Which columns are categorical, their categories, which numeric ones are integer-valued.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"outlook": ["sunny", "rain", "overcast", "sunny"],
    ...                   "humidity": [90, 70, 80, 60]})
    >>> ID3Classifier().fit(X, ["no", "yes", "yes", "yes"]).predict(X).tolist()
    ['no', 'yes', 'yes', 'yes']
    """

    _criterion = "gain"
    _allow_nan = False
    _missing_to_all_branches = False

    def __init__(self, *, max_depth=None, min_samples_split=2, min_samples_leaf=1):
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
