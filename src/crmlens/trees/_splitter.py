"""Split search for ID3 and C4.5: one numpy pass per feature and node.

A numeric feature is sorted once at the node; cumulative class counts then give the class
table of every candidate threshold (midpoints between consecutive distinct values) at once. A
categorical feature needs one ``bincount`` of (category, class) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmlens.trees._criteria import entropy, split_entropy, split_information


@dataclass(frozen=True)
class Split:
    """The best test of one feature at one node."""

    feature: int
    gain: float
    gain_ratio: float
    threshold: float = float("nan")  # numeric
    codes: np.ndarray | None = None  # categorical: codes of the non-empty branches
    branch_weights: np.ndarray | None = None  # known weight per branch (sums to 1)


def _xlogx(a: np.ndarray) -> np.ndarray:
    """``a * ln(a)`` with ``0 ln 0 = 0`` (faster than scipy's xlogy for our non-negative a)."""
    return a * np.log(np.maximum(a, 1e-300))


def _gain_ratio(gain: float, sizes: np.ndarray) -> float:
    info = float(split_information(sizes))
    return gain / info if info > 1e-12 else 0.0


def numeric_split(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, feature: int, n_classes: int,
                  node_weight: float, min_leaf: float, mdl_correction: bool) -> Split | None:
    """Best binary threshold ``x <= t`` by information gain among the cases with known ``x``.

    The gain is multiplied by the known share of the node's weight (C4.5); with
    ``mdl_correction`` it is reduced by ``log2(T) / N`` where T is the number of candidate
    thresholds and N the node's weight (C4.5 Release 8). Returns None when no threshold leaves
    ``min_leaf`` weight on both sides or the gain is not positive.
    """
    known = ~np.isnan(x)
    if not known.all():
        x, y, w = x[known], y[known], w[known]
    if x.size < 2:
        return None
    order = np.argsort(x)  # ties need no order: only boundaries between values count
    xs = x[order]
    boundaries = np.flatnonzero(xs[:-1] < xs[1:])
    if boundaries.size == 0:
        return None
    # class-major layout: reductions over the few classes run along contiguous rows
    table = np.zeros((n_classes, xs.size))
    sorted_w = w[order]
    table[y[order], np.arange(xs.size)] = sorted_w
    cumulative = np.cumsum(table, axis=1)
    total = cumulative[:, -1]
    left = cumulative[:, boundaries]
    right = np.maximum(total[:, None] - left, 0.0)  # float noise must not go negative
    w_left = np.cumsum(sorted_w)[boundaries]
    known_weight = float(total.sum())
    w_right = np.maximum(known_weight - w_left, 0.0)
    allowed = (w_left >= min_leaf) & (w_right >= min_leaf)
    if not allowed.any():
        return None
    # sum_sides |S_i| H(S_i) = sum_sides (|S_i| ln|S_i| - sum_k c_k ln c_k) / ln 2
    weighted = (_xlogx(w_left) + _xlogx(w_right)
                - _xlogx(left).sum(axis=0) - _xlogx(right).sum(axis=0))
    child = weighted / (known_weight * np.log(2.0))
    gains = np.where(allowed, float(entropy(total)) - child, -np.inf)
    best = int(np.argmax(gains))
    gain = float(gains[best]) * known_weight / node_weight
    if mdl_correction:
        gain -= np.log2(boundaries.size) / node_weight
    if gain <= 1e-12:
        return None
    lo, hi = xs[boundaries[best]], xs[boundaries[best] + 1]
    threshold = lo + (hi - lo) / 2.0
    if threshold >= hi:  # adjacent floats: the midpoint rounds up to hi
        threshold = lo
    sizes = np.array([w_left[best], w_right[best], max(node_weight - known_weight, 0.0)])
    return Split(feature=feature, gain=gain, gain_ratio=_gain_ratio(gain, sizes),
                 threshold=float(threshold),
                 branch_weights=sizes[:2] / known_weight)


def categorical_split(codes: np.ndarray, y: np.ndarray, w: np.ndarray, *, feature: int,
                      n_categories: int, n_classes: int, node_weight: float,
                      min_leaf: float) -> Split | None:
    """Multiway test with one branch per category present at the node.

    At least two branches must hold ``min_leaf`` weight (Quinlan's rule); smaller branches are
    allowed. Gain and split information follow C4.5 (unknown values: gain scaled by the known
    share, and one extra outcome in the split information).
    """
    known = ~np.isnan(codes)
    if not known.all():
        codes, y, w = codes[known], y[known], w[known]
    if codes.size < 2:
        return None
    codes = codes.astype(np.intp)
    table = np.bincount(codes * n_classes + y, weights=w,
                        minlength=n_categories * n_classes).reshape(n_categories, n_classes)
    sizes = table.sum(axis=1)
    present = np.flatnonzero(sizes > 0)
    if present.size < 2 or np.count_nonzero(sizes >= min_leaf) < 2:
        return None
    branches = table[present]
    known_weight = float(sizes.sum())
    gain = (float(entropy(table.sum(axis=0))) - float(split_entropy(branches))) \
        * known_weight / node_weight
    if gain <= 1e-12:
        return None
    outcome_sizes = np.append(sizes[present], max(node_weight - known_weight, 0.0))
    return Split(feature=feature, gain=gain, gain_ratio=_gain_ratio(gain, outcome_sizes),
                 codes=present, branch_weights=sizes[present] / known_weight)
