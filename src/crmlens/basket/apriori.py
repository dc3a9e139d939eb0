"""Apriori: level-wise candidate generation and counting.

Level 2 counts every pair inside every basket at once into a triangular array (the standard
trick of fast Apriori implementations; a sort-based count replaces it when the triangle would be
too large). From level 3 on, candidates of length ``k`` are joined from frequent ``(k-1)``-sets
sharing their first ``k-2`` items, pruned when any ``(k-1)``-subset is infrequent, and counted
vertically: per block of baskets, each item in a candidate gets a bitset over the block, and a
candidate's count is the popcount of the AND of its items' bitsets. Blocks bound the memory
(items x block / 8 bytes); one pass over the baskets per level, as in the original algorithm.
"""

from __future__ import annotations

import numpy as np

from crmlens.basket.ranked import RankedBaskets, gather_prefixes

Chunk = tuple[tuple[int, ...], np.ndarray, np.ndarray]

_TRIANGLE_CELLS = 1 << 25   # pair counts kept in one int64 array up to 256 MiB
_PAIR_BLOCK = 1 << 21       # pairs enumerated at once (bounds the scratch memory)
_BLOCK_BASKETS = 1 << 16    # baskets per bitset block (1,024 words per item)
_AND_WORDS = 1 << 22        # candidates x words ANDed at once


def apriori_ranked(data: RankedBaskets, min_count: int, max_len: int) -> list[Chunk]:
    """Frequent itemsets of length >= 2 as chunks ``(prefix, last ranks, counts)``."""
    out: list[Chunk] = []
    if max_len < 2 or data.n_frequent < 2:
        return out
    level = _frequent_pairs(data, min_count)          # (n, 2) sorted rank tuples
    counts = level[1]
    level = level[0]
    k = 2
    while len(level):
        _emit(level, counts, out)
        if k >= max_len:
            break
        candidates = _candidates(level)
        if len(candidates) == 0:
            break
        cand_counts = _count(data, candidates)
        keep = cand_counts >= min_count
        level, counts = candidates[keep], cand_counts[keep]
        k += 1
    return out


def _emit(level: np.ndarray, counts: np.ndarray, out: list[Chunk]) -> None:
    """Group itemsets (sorted rows) by their prefix into output chunks."""
    prefix = level[:, :-1]
    starts = np.flatnonzero(np.concatenate(([True], (prefix[1:] != prefix[:-1]).any(axis=1))))
    ends = np.append(starts[1:], len(level))
    for s, e in zip(starts.tolist(), ends.tolist()):
        out.append((tuple(prefix[s].tolist()), level[s:e, -1].copy(), counts[s:e].copy()))


def _frequent_pairs(data: RankedBaskets, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    """All frequent pairs ``(a, b)``, ``a < b``, with counts, sorted."""
    n = data.n_frequent
    cells = n * (n - 1) // 2
    rows = data.rows()
    total = np.zeros(cells, dtype=np.int64) if cells <= _TRIANGLE_CELLS else None
    partial_codes, partial_counts = [], []
    # Blocks of entries holding about _PAIR_BLOCK pairs each (an entry pairs with its position).
    pairs_before = np.cumsum(np.arange(len(rows), dtype=np.int64) - data.indptr[rows])
    cuts = np.searchsorted(pairs_before, np.arange(0, int(pairs_before[-1]) + _PAIR_BLOCK,
                                                   _PAIR_BLOCK), side="right")
    bounds = np.unique(np.concatenate(([0], cuts, [len(rows)])))
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        entries = np.arange(a, b, dtype=np.int64)
        # every entry b pairs with the items before it in its basket (all of lower rank)
        low, owner = gather_prefixes(data.indptr, data.ranks, entries, rows[entries])
        high = data.ranks[a:b].astype(np.int64)[owner]
        codes = high * (high - 1) // 2 + low
        if total is not None:
            total += np.bincount(codes, minlength=cells)
        else:
            c, k = np.unique(codes, return_counts=True)
            partial_codes.append(c)
            partial_counts.append(k)
    if total is not None:
        codes = np.flatnonzero(total >= min_count)
        counts = total[codes]
    else:
        all_codes = np.concatenate(partial_codes) if partial_codes else np.zeros(0, np.int64)
        all_counts = np.concatenate(partial_counts) if partial_counts else all_codes
        codes, inverse = np.unique(all_codes, return_inverse=True)
        counts = np.bincount(inverse, weights=all_counts, minlength=len(codes)).astype(np.int64)
        keep = counts >= min_count
        codes, counts = codes[keep], counts[keep]
    high = ((1 + np.sqrt(1 + 8 * codes.astype(np.float64))) // 2).astype(np.int64)
    # correct rounding at exact triangular numbers
    high -= high * (high - 1) // 2 > codes
    high += (high + 1) * high // 2 <= codes
    low = codes - high * (high - 1) // 2
    pairs = np.stack([low, high], axis=1).astype(np.int32)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order], counts[order]


def _candidates(level: np.ndarray) -> np.ndarray:
    """Join frequent k-sets sharing a (k-1)-prefix, prune by (k)-subsets; sorted rows."""
    k = level.shape[1]
    prefix = level[:, :-1]
    starts = np.flatnonzero(np.concatenate(([True], (prefix[1:] != prefix[:-1]).any(axis=1))))
    ends = np.append(starts[1:], len(level))
    sizes = ends - starts
    parts = []
    for s, e in zip(starts[sizes >= 2].tolist(), ends[sizes >= 2].tolist()):
        i, j = np.triu_indices(e - s, 1)
        parts.append(np.column_stack([level[s + i], level[s + j, -1]]))
    if not parts:
        return np.zeros((0, k + 1), dtype=np.int32)
    cand = np.concatenate(parts).astype(np.int32)
    # Prune: every subset missing one of the first k-1 items must be frequent (the two
    # subsets missing one of the last two items are the joined parents).
    known = _row_keys(level)
    keep = np.ones(len(cand), dtype=bool)
    for drop in range(k - 1):
        sub = np.delete(cand, drop, axis=1)
        keep &= np.isin(_row_keys(sub), known)
    cand = cand[keep]
    return cand[np.lexsort(cand.T[::-1])]


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """One comparable scalar per row (bytes of the row), for membership tests."""
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


def _count(data: RankedBaskets, cand: np.ndarray) -> np.ndarray:
    """Baskets containing each candidate, by ANDing item bitsets block by block."""
    used = np.unique(cand)
    slot = np.full(data.n_frequent, -1, dtype=np.int64)
    slot[used] = np.arange(len(used))
    local = slot[cand]
    counts = np.zeros(len(cand), dtype=np.int64)
    for first in range(0, data.n_baskets, _BLOCK_BASKETS):
        last = min(first + _BLOCK_BASKETS, data.n_baskets)
        lo, hi = data.indptr[first], data.indptr[last]
        entry_slot = slot[data.ranks[lo:hi]]
        tid = np.repeat(np.arange(last - first, dtype=np.int64),
                        np.diff(data.indptr[first:last + 1]))
        keep = entry_slot >= 0
        words = (last - first + 63) // 64
        bits = np.zeros(len(used) * words, dtype=np.uint64)
        t = tid[keep]
        np.bitwise_or.at(bits, entry_slot[keep] * words + (t >> 6),
                         np.left_shift(np.uint64(1), (t & 63).astype(np.uint64)))
        bits = bits.reshape(len(used), words)
        step = max(1, _AND_WORDS // words)
        for a in range(0, len(cand), step):
            block = local[a:a + step]
            both = bits[block[:, 0]].copy()
            for col in range(1, block.shape[1]):
                both &= bits[block[:, col]]
            counts[a:a + step] += np.bitwise_count(both).sum(axis=1, dtype=np.int64)
    return counts
