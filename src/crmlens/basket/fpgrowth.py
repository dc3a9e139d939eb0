"""FP-Growth on conditional pattern bases held as weighted CSR arrays.

FP-Growth grows patterns from a suffix: the conditional pattern base of an item is the set of
prefix paths (the more frequent items) of the baskets containing it, each with a weight; the
items frequent in that base extend the suffix, and the search recurses on each of them. The
classic implementation stores the bases as a pointer tree (the FP-tree) whose point is that
identical prefix paths are stored once with a count. Here a base is a CSR array of paths with
a weight per path, and identical paths are merged exactly (``np.unique`` over padded rows)
whenever the paths are short enough to pad cheaply, which is the same compression without
Python objects per node. Items inside a base are ranks, sorted, so "the items before ``x``"
is a slice of each row.
"""

from __future__ import annotations

import numpy as np

from crmlens.basket.ranked import RankedBaskets, gather_prefixes

Chunk = tuple[tuple[int, ...], np.ndarray, np.ndarray]

# Merge identical paths only when the padded (paths x longest path) matrix stays this small.
_MERGE_CELLS = 1 << 24


def fpgrowth_ranked(data: RankedBaskets, min_count: int, max_len: int) -> list[Chunk]:
    """Frequent itemsets of length >= 2 as chunks ``(suffix, extension ranks, counts)``."""
    out: list[Chunk] = []
    if max_len < 2 or data.n_frequent < 2:
        return out
    indptr, ranks, weights = _compact(data.indptr, data.ranks,
                                      np.ones(data.n_baskets, dtype=np.int64))
    _grow((), indptr, ranks, weights, data.n_frequent, 1, min_count, max_len, out)
    return out


def _grow(suffix: tuple[int, ...], indptr: np.ndarray, ranks: np.ndarray, weights: np.ndarray,
          n_ranks: int, length: int, min_count: int, max_len: int, out: list[Chunk]) -> None:
    """Extend ``suffix + (x,)`` for every item ``x`` of this base (itemsets of ``length``)."""
    if len(ranks) == 0:
        return
    n_rows = len(indptr) - 1
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
    by_item = np.argsort(ranks, kind="stable")
    item_ptr = np.zeros(n_ranks + 1, dtype=np.int64)
    np.cumsum(np.bincount(ranks, minlength=n_ranks), out=item_ptr[1:])
    for x in np.flatnonzero(np.diff(item_ptr)).tolist():
        if x == 0:
            continue
        entries = by_item[item_ptr[x]:item_ptr[x + 1]]
        paths = rows[entries]
        items, owner = gather_prefixes(indptr, ranks, entries, paths)
        if len(items) == 0:
            continue
        path_weight = weights[paths]
        counts = np.bincount(items, weights=path_weight[owner], minlength=x).astype(np.int64)
        ext = np.flatnonzero(counts >= min_count)
        if len(ext) == 0:
            continue
        new_suffix = suffix + (x,)
        out.append((new_suffix, ext, counts[ext]))
        if len(ext) < 2 or length + 2 > max_len:
            continue
        # The conditional pattern base of x: its prefix paths, infrequent items removed.
        keep = counts[items] >= min_count
        sub_items, sub_owner = items[keep], owner[keep]
        sub_ptr = np.zeros(len(paths) + 1, dtype=np.int64)
        np.cumsum(np.bincount(sub_owner, minlength=len(paths)), out=sub_ptr[1:])
        sub_ptr, sub_items, sub_weights = _compact(sub_ptr, sub_items, path_weight)
        _grow(new_suffix, sub_ptr, sub_items, sub_weights, x, length + 1, min_count, max_len,
              out)


def _compact(indptr: np.ndarray, ranks: np.ndarray,
             weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop paths of fewer than two items (they extend nothing) and merge identical paths."""
    lengths = np.diff(indptr)
    keep = lengths >= 2
    if not keep.all():
        entry_keep = np.repeat(keep, lengths)
        ranks, weights, lengths = ranks[entry_keep], weights[keep], lengths[keep]
    n = len(lengths)
    longest = int(lengths.max()) if n else 0
    if n > 1 and n * longest <= _MERGE_CELLS:
        padded = np.full((n, longest), -1, dtype=np.int32)
        col = np.arange(len(ranks), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths,
                                                                 lengths)
        padded[np.repeat(np.arange(n), lengths), col] = ranks
        unique, inverse = np.unique(padded, axis=0, return_inverse=True)
        if len(unique) < n:
            weights = np.bincount(inverse.ravel(), weights=weights,
                                  minlength=len(unique)).astype(np.int64)
            lengths = (unique >= 0).sum(axis=1)
            ranks = unique[unique >= 0].astype(np.int32)
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return indptr, ranks, weights
