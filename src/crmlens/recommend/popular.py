"""Popularity recommender: the most bought items, within the customer's segment if known.

Popularity is the number of distinct customers who bought an item. With a segmentation, a
customer of a segment of at least ``min_segment_customers`` gets that segment's popularity
("popular in your segment"); everyone else (new customers, small segments) the overall one.
Without segments this is the usual popularity baseline of the evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from crmlens.recommend.data import Interactions
from crmlens.recommend.scoring import SOURCES, Component, binary, check_params, recommend_top_k


class PopularRecommender(BaseEstimator):
    """Most popular items overall, or within the customer's segment.

    Parameters
    ----------
    min_segment_customers : int, default 20
        Smaller segments fall back to the overall popularity.

    Attributes
    ----------
    overall_ : numpy.ndarray
        Customers per item (``n_items``).
    segment_popularity_ : numpy.ndarray
        ``n_segments x n_items`` customers per item within each usable segment.
    segments_ : pandas.Index
        The usable segment labels (rows of ``segment_popularity_``).
    customer_segment_ : dict
        customer_id -> segment label, for the customers whose segment is usable.
    """

    def __init__(self, *, min_segment_customers: int = 20):
        self.min_segment_customers = min_segment_customers

    def fit(self, interactions: Interactions,
            segments: Mapping[str, str] | pd.Series | None = None) -> PopularRecommender:
        """Count buyers per item (and per segment when ``segments`` maps customers to one)."""
        check_params(self, min_segment_customers=1)
        bought = binary(interactions.customers)
        self.overall_ = np.asarray(bought.sum(axis=0)).ravel().astype(np.float32)
        self.n_items_ = interactions.n_items
        seg = pd.Series(segments if segments is not None else {}, dtype=object)
        labels = seg.reindex(interactions.customer_ids).to_numpy(dtype=object)
        has = pd.notna(labels)
        sizes = pd.Series(seg.to_numpy(dtype=object)).value_counts() if len(seg) else \
            pd.Series(dtype="int64")
        usable = sizes[sizes >= self.min_segment_customers].index
        self.segments_ = pd.Index(sorted(usable, key=str))
        codes = np.full(len(labels), -1, np.int64)
        codes[has] = self.segments_.get_indexer(labels[has])
        rows = codes >= 0
        indicator = sp.csr_matrix((np.ones(int(rows.sum()), np.float32),
                                   (codes[rows], np.flatnonzero(rows))),
                                  shape=(len(self.segments_), bought.shape[0]))
        self.segment_popularity_ = (indicator @ bought).toarray()
        self.customer_segment_ = {c: s for c, s in seg.items()
                                  if pd.notna(s) and s in set(self.segments_)}
        return self

    def components(self, history: sp.csr_matrix, customer_ids: np.ndarray,
                   weight: float = 1.0, normalize: bool = True) -> list[Component]:
        """Popularity rows of a block: the segment's where known, else overall (max 1)."""
        codes = self.segments_.get_indexer(
            [self.customer_segment_.get(c) for c in customer_ids]) if len(self.segments_) \
            else np.full(len(customer_ids), -1)
        table = np.vstack([self.segment_popularity_, self.overall_[None, :]])
        scores = table[np.where(codes >= 0, codes, len(self.segments_))].astype(np.float32)
        if normalize:
            top = scores.max(axis=1, keepdims=True)
            np.divide(scores, top, out=scores, where=top > 0)
        source = np.where(codes >= 0, SOURCES.index("popular_segment"),
                          SOURCES.index("popular")).astype(np.int8)
        return [Component(scores * weight, source)]

    def recommend(self, history: sp.spmatrix, customer_ids, *, k: int = 10,
                  exclude_seen: bool = True, allowed: np.ndarray | None = None):
        """Top-k items per customer; see :func:`crmlens.recommend.scoring.recommend_top_k`."""
        check_is_fitted(self)
        return recommend_top_k(self, history, customer_ids, k=k, exclude_seen=exclude_seen,
                               allowed=allowed)
