"""The default recommender: association rules, item CF and segment popularity blended.

Each customer's rule scores and item-CF scores are scaled to a maximum of 1 and blended with
``rules_weight`` and ``cf_weight``; popularity (of the customer's segment, else overall) is
added with a small ``popular_weight`` so it breaks ties and fills the list for customers with
few or no purchases (a cascade in effect). Each recommendation carries the source that gave
it the most, with that source's reason.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from crmlens.errors import InputError
from crmlens.recommend.data import Interactions
from crmlens.recommend.item_cf import ItemCFRecommender
from crmlens.recommend.popular import PopularRecommender
from crmlens.recommend.rules import RulesRecommender
from crmlens.recommend.scoring import Component, recommend_top_k


class HybridRecommender(BaseEstimator):
    """Blend of :class:`RulesRecommender`, :class:`ItemCFRecommender` and popularity.

    Parameters
    ----------
    rules_weight, cf_weight, popular_weight : float, default 0.5, 1.0, 0.1
        Weights of the per-customer max-scaled scores (>= 0, not all 0).
    neighbours : int, default 50
        Neighbours kept per item by both item-item models.
    rules_min_count : int, default 3
    cf_min_count : int, default 2
    similarity : {"cosine", "jaccard"}, default "cosine"
    min_segment_customers : int, default 20

    Attributes
    ----------
    rules_, item_cf_, popular_ : fitted component recommenders
    """

    def __init__(self, *, rules_weight: float = 0.5, cf_weight: float = 1.0,
                 popular_weight: float = 0.1, neighbours: int = 50, rules_min_count: int = 3,
                 cf_min_count: int = 2, similarity: str = "cosine",
                 min_segment_customers: int = 20):
        self.rules_weight = rules_weight
        self.cf_weight = cf_weight
        self.popular_weight = popular_weight
        self.neighbours = neighbours
        self.rules_min_count = rules_min_count
        self.cf_min_count = cf_min_count
        self.similarity = similarity
        self.min_segment_customers = min_segment_customers

    def fit(self, interactions: Interactions,
            segments: Mapping[str, str] | pd.Series | None = None) -> HybridRecommender:
        """Fit the three components on ``interactions``; returns self."""
        weights = (self.rules_weight, self.cf_weight, self.popular_weight)
        for name, value in zip(("rules_weight", "cf_weight", "popular_weight"), weights):
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise InputError("error.recommend_bad_option", option=name, value=str(value))
        if not any(weights):
            raise InputError("error.recommend_bad_option", option="weights", value="0")
        self.rules_ = RulesRecommender(min_count=self.rules_min_count,
                                       neighbours=self.neighbours).fit(interactions)
        self.item_cf_ = ItemCFRecommender(similarity=self.similarity, neighbours=self.neighbours,
                                          min_count=self.cf_min_count).fit(interactions)
        self.popular_ = PopularRecommender(
            min_segment_customers=self.min_segment_customers).fit(interactions, segments)
        self.n_items_ = interactions.n_items
        return self

    def components(self, history: sp.csr_matrix, customer_ids: np.ndarray) -> list[Component]:
        """The weighted, max-scaled components of a block of customers."""
        parts: list[Component] = []
        for model, weight in ((self.rules_, self.rules_weight), (self.item_cf_, self.cf_weight),
                              (self.popular_, self.popular_weight)):
            if weight:
                parts += model.components(history, customer_ids, weight=float(weight),
                                          normalize=True)
        return parts

    def recommend(self, history: sp.spmatrix, customer_ids, *, k: int = 10,
                  exclude_seen: bool = True, allowed: np.ndarray | None = None):
        """Top-k items per customer; see :func:`crmlens.recommend.scoring.recommend_top_k`."""
        check_is_fitted(self)
        return recommend_top_k(self, history, customer_ids, k=k, exclude_seen=exclude_seen,
                               allowed=allowed)
