"""Item-to-item collaborative filtering: "customers who bought X also bought this".

Similarity of two items from the customers who bought them (binary customer x item matrix):
cosine ``n_ij / sqrt(n_i n_j)`` or Jaccard ``n_ij / (n_i + n_j - n_ij)``. Each item keeps its
top ``neighbours`` (sparse); a customer's score for ``j`` sums the similarities of ``j`` to the
items they bought, and the explanation names the most similar one.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from crmlens.recommend.data import Interactions
from crmlens.recommend.neighbours import top_neighbours
from crmlens.recommend.scoring import ItemItemScorer, check_params

SIMILARITIES = ("cosine", "jaccard")


class ItemCFRecommender(ItemItemScorer, BaseEstimator):
    """Item-based collaborative filtering on the sparse customer x item matrix.

    Parameters
    ----------
    similarity : {"cosine", "jaccard"}, default "cosine"
    neighbours : int, default 50
        Most similar items kept per item.
    min_count : int, default 2
        Minimum number of customers who bought both items.

    Attributes
    ----------
    weights_ : scipy.sparse.csr_matrix
        ``n_items x n_items`` similarities (row: bought item, column: candidate).
    """

    source = "item_cf"

    def __init__(self, *, similarity: str = "cosine", neighbours: int = 50, min_count: int = 2):
        self.similarity = similarity
        self.neighbours = neighbours
        self.min_count = min_count

    def fit(self, interactions: Interactions) -> ItemCFRecommender:
        """Item similarities from the customers of ``interactions``; returns self."""
        check_params(self, min_count=1, neighbours=1)
        if self.similarity not in SIMILARITIES:
            from crmlens.errors import InputError

            raise InputError("error.recommend_bad_option", option="similarity",
                             value=str(self.similarity))
        jaccard = self.similarity == "jaccard"

        def similarity(co: np.ndarray, rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
            n_i, n_j = counts[rows][:, None], counts[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                sim = co / (n_i + n_j - co) if jaccard else co / np.sqrt(n_i * n_j)
            return np.nan_to_num(sim)

        self.weights_ = top_neighbours(interactions.customers, similarity,
                                       neighbours=self.neighbours, min_count=self.min_count)
        self.reverse_ = self.weights_.T.tocsr()
        self.n_items_ = interactions.n_items
        return self
