"""Association-rule recommender: "bought together with X".

Rules ``i -> j`` are counted on order baskets (same order = bought together): support count
``n_ij``, confidence ``n_ij / n_i``, lift ``confidence / (n_j / n_orders)``. A customer's
score for ``j`` is the sum of the confidences of the rules whose antecedent they bought; the
explanation names the antecedent with the largest confidence. Pairwise rules computed directly
from sparse co-occurrence are what a per-customer score needs (longer antecedents would match
few customers), so ``crmlens.basket`` is not required here.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from crmlens.recommend.data import Interactions
from crmlens.recommend.neighbours import top_neighbours
from crmlens.recommend.scoring import ItemItemScorer, check_params


class RulesRecommender(ItemItemScorer, BaseEstimator):
    """Recommend the consequents of pairwise association rules.

    Parameters
    ----------
    min_count : int, default 3
        Minimum number of orders holding both items (absolute support of the rule).
    min_lift : float, default 1.0
        Rules with a lift at or below this are dropped (no association).
    neighbours : int, default 50
        Rules kept per antecedent (highest confidence first).

    Attributes
    ----------
    weights_ : scipy.sparse.csr_matrix
        ``n_items x n_items`` rule confidences (antecedent row, consequent column).
    n_orders_ : int
    """

    source = "rules"

    def __init__(self, *, min_count: int = 3, min_lift: float = 1.0, neighbours: int = 50):
        self.min_count = min_count
        self.min_lift = min_lift
        self.neighbours = neighbours

    def fit(self, interactions: Interactions) -> RulesRecommender:
        """Count the rules on the order baskets of ``interactions``; returns self."""
        check_params(self, min_count=1, neighbours=1)
        orders = interactions.orders
        n_orders = max(orders.shape[0], 1)
        min_lift = float(self.min_lift)

        def confidence(co: np.ndarray, rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                conf = co / counts[rows][:, None]
                lift = conf * n_orders / counts[None, :]
            conf[~(lift > min_lift)] = 0.0
            return np.nan_to_num(conf)

        self.weights_ = top_neighbours(orders, confidence, neighbours=self.neighbours,
                                       min_count=self.min_count)
        self.n_orders_ = int(orders.shape[0])
        self.reverse_ = self.weights_.T.tocsr()
        self.n_items_ = interactions.n_items
        return self
