"""The scikit-learn estimator contract, checked by scikit-learn itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from crmlens.trees import C45Classifier, CARTClassifier, ID3Classifier


@parametrize_with_checks([ID3Classifier(), C45Classifier(), CARTClassifier()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("learner", [ID3Classifier, C45Classifier])
def test_keyword_only_params_and_fitted_attributes(learner, tennis):
    with pytest.raises(TypeError):
        learner(3)
    X, y = tennis
    tree = learner(max_depth=2)
    assert tree.fit(X, y) is tree
    assert tree.classes_.tolist() == ["no", "yes"]
    assert tree.feature_names_in_.tolist() == list(X.columns)
    assert tree.predict_proba(X).shape == (14, 2)
    assert clone(tree).get_params() == tree.get_params()
    with pytest.raises(ValueError, match="feature names"):
        tree.predict(X[list(reversed(X.columns))])


def test_id3_rejects_missing_values_and_c45_accepts_them():
    X = np.array([[1.0], [np.nan], [3.0], [4.0]])
    with pytest.raises(ValueError, match="NaN"):
        ID3Classifier().fit(X, [0, 0, 1, 1])
    assert C45Classifier(min_samples_leaf=1).fit(X, [0, 0, 1, 1]).predict(X).shape == (4,)


def test_works_inside_grid_search():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], size=200)})
    y = (X["x"] > 0).astype(int)
    search = GridSearchCV(C45Classifier(), {"max_depth": [1, 2]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.9
