"""Turning per-item scores into each customer's top-k, one block of customers at a time.

A recommender contributes scoring *components* for a block of customers: dense
``block x n_items`` score arrays (already weighted), each tagged with a source and, for
item-item components, the sparse weights that produced it (to name the reason item). The
scores of a block are dense only for that block; the top k come from ``argpartition``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from crmlens.errors import InputError

# Where a recommendation comes from; codes index this tuple.
SOURCES = ("rules", "item_cf", "popular_segment", "popular")
# i18n explanation per source (the reason item fills {item}).
REASON_KEYS = {"rules": "recommend.reason.rules", "item_cf": "recommend.reason.item_cf",
               "popular_segment": "recommend.reason.popular_segment",
               "popular": "recommend.reason.popular"}
# Customers per block: 1024 x 10k items float32 = 40 MB per component.
CUSTOMER_BLOCK = 1024


def check_params(est: object, **minimums: int) -> None:
    """Integer parameters of ``est`` at least their minimum (InputError otherwise)."""
    for name, low in minimums.items():
        value = getattr(est, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError("error.recommend_bad_option", option=name, value=str(value))


@dataclass
class Component:
    """One scoring component of a block of customers."""

    scores: np.ndarray                 # block x n_items, weighted
    source: int | np.ndarray           # code into SOURCES (per row when an array)
    # Transposed item x item weights (row j: the items pointing at j), to name the reason item.
    reverse: sp.csr_matrix | None = None


@dataclass
class TopK:
    """The top-k recommendations of some customers (``-1`` pads when fewer were found).

    Attributes
    ----------
    customer_ids : numpy.ndarray
    items : numpy.ndarray
        ``n x k`` int32 item codes, best first.
    scores : numpy.ndarray
        ``n x k`` float32.
    sources : numpy.ndarray
        ``n x k`` int8 codes into :data:`SOURCES` (``-1`` with no item).
    reason_items : numpy.ndarray
        ``n x k`` int32 item code of the bought item that triggered it (``-1``: none).
    """

    customer_ids: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    sources: np.ndarray
    reason_items: np.ndarray


def binary(history: sp.spmatrix) -> sp.csr_matrix:
    """A 0/1 float32 copy of a purchase matrix."""
    out = sp.csr_matrix(history, dtype=np.float32, copy=True)
    out.eliminate_zeros()
    out.data[:] = 1.0
    return out


def _reasons(history: sp.csr_matrix, weights_t: sp.csr_matrix, rows: np.ndarray,
             items: np.ndarray) -> np.ndarray:
    """For each pair (customer row, item j): the bought item i with the largest w[i, j]."""
    if len(rows) == 0:
        return np.empty(0, np.int32)
    product = weights_t[items].multiply(history[rows]).tocsr()
    best = np.asarray(product.argmax(axis=1)).ravel().astype(np.int32)
    best[np.asarray(product.max(axis=1).todense()).ravel() <= 0] = -1
    return best


class ItemItemScorer:
    """Mixin: score = purchases x item-item weights; ``recommend`` from the components."""

    source = "rules"

    def components(self, history: sp.csr_matrix, customer_ids: np.ndarray,
                   weight: float = 1.0, normalize: bool = False) -> list[Component]:
        """The component of a block of customers (``history`` binary, block rows)."""
        scores = (history @ self.weights_).toarray()
        if normalize:
            top = scores.max(axis=1, keepdims=True)
            np.divide(scores, top, out=scores, where=top > 0)
        return [Component(scores * weight, SOURCES.index(self.source), self.reverse_)]

    def recommend(self, history: sp.spmatrix, customer_ids: Sequence[str], *, k: int = 10,
                  exclude_seen: bool = True, allowed: np.ndarray | None = None) -> TopK:
        """Top-k items per customer; see :func:`recommend_top_k`."""
        check_is_fitted(self)
        return recommend_top_k(self, history, customer_ids, k=k, exclude_seen=exclude_seen,
                               allowed=allowed)


def recommend_top_k(model, history: sp.spmatrix, customer_ids: Sequence[str], *, k: int = 10,
                    exclude_seen: bool = True, allowed: np.ndarray | None = None) -> TopK:
    """The top-k items of every customer from a fitted model's components.

    Parameters
    ----------
    model : recommender
        Has ``components(history_block, ids_block)``.
    history : scipy.sparse matrix
        ``n_customers x n_items`` purchases (any positive value = bought).
    customer_ids : sequence of str
        Label of each row (popularity by segment uses it).
    k : int, default 10
    exclude_seen : bool, default True
        Leave out the items a customer already bought.
    allowed : numpy.ndarray of bool, optional
        ``n_items`` mask of the catalogue that may be recommended.

    Returns
    -------
    TopK
        Only items with a positive score; ``-1`` pads the rest.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError("error.recommend_bad_option", option="k", value=str(k))
    hist = binary(history)
    ids = np.asarray(customer_ids, dtype=object)
    n, n_items = hist.shape
    kk = min(int(k), n_items)
    items = np.full((n, int(k)), -1, np.int32)
    scores = np.zeros((n, int(k)), np.float32)
    sources = np.full((n, int(k)), -1, np.int8)
    reasons = np.full((n, int(k)), -1, np.int32)
    if kk == 0:
        return TopK(ids, items, scores, sources, reasons)
    for lo in range(0, n, CUSTOMER_BLOCK):
        hi = min(lo + CUSTOMER_BLOCK, n)
        block = hist[lo:hi]
        parts = model.components(block, ids[lo:hi])
        total = np.zeros((hi - lo, n_items), np.float32)
        for part in parts:
            total += part.scores
        if exclude_seen:
            total[block.nonzero()] = 0.0
        if allowed is not None:
            total[:, ~allowed] = 0.0
        top = np.argpartition(-total, kk - 1, axis=1)[:, :kk]
        val = np.take_along_axis(total, top, axis=1)
        order = np.argsort(-val, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        val = np.take_along_axis(val, order, axis=1)
        ok = val > 0
        # Which component gave the most to each chosen cell.
        stacked = np.stack([np.take_along_axis(p.scores, top, axis=1) for p in parts])
        winner = stacked.argmax(axis=0)
        src = np.full(top.shape, -1, np.int8)
        why = np.full(top.shape, -1, np.int32)
        for c, part in enumerate(parts):
            cells = ok & (winner == c)
            code = part.source if np.isscalar(part.source) else \
                np.broadcast_to(np.asarray(part.source)[:, None], top.shape)
            src[cells] = code if np.isscalar(code) else code[cells]
            if part.reverse is not None and cells.any():
                r, col = np.nonzero(cells)
                why[r, col] = _reasons(block, part.reverse, r, top[r, col])
        items[lo:hi, :kk] = np.where(ok, top, -1)
        scores[lo:hi, :kk] = np.where(ok, val, 0.0)
        sources[lo:hi, :kk] = src
        reasons[lo:hi, :kk] = why
    return TopK(ids, items, scores, sources, reasons)
