"""Decision-tree learners (ID3, C4.5, CART) with the scikit-learn estimator API.

:class:`ID3Classifier` and :class:`C45Classifier` are implemented here (vectorized split
search, categorical and numeric features, C4.5's missing values and pessimistic pruning);
:class:`CARTClassifier` is scikit-learn's ``DecisionTreeClassifier``. All three export their
leaves as :class:`Rule` objects (:func:`export_rules`), as text (:func:`rules_to_text`,
:func:`export_text`) or JSON (:func:`rules_to_json`). See ``docs/trees.md``.
"""

from crmlens.trees._c45 import C45Classifier
from crmlens.trees._cart import CARTClassifier
from crmlens.trees._criteria import entropy, information_gain, split_information
from crmlens.trees._export import export_rules, export_text, rules_to_json
from crmlens.trees._formatting import format_rule, rules_to_text
from crmlens.trees._id3 import ID3Classifier
from crmlens.trees._node import Node
from crmlens.trees._pruning import upper_error_rate
from crmlens.trees._rule import Condition, Rule, simplify

__all__ = [
    "C45Classifier",
    "CARTClassifier",
    "Condition",
    "ID3Classifier",
    "Node",
    "Rule",
    "entropy",
    "export_rules",
    "export_text",
    "format_rule",
    "information_gain",
    "rules_to_json",
    "rules_to_text",
    "simplify",
    "split_information",
    "upper_error_rate",
]
