"""Eclat on bitsets of conditional databases, vectorised across siblings.

For each frequent item ``r`` (the least frequent first, in effect), the baskets containing it
form its conditional database; the items that are more frequent than ``r`` and frequent inside
that database get one bitset row each over those baskets only (``np.uint64`` words). A bitset
over the *whole* data would cost ``n_baskets / 8`` bytes per item — 125 kB per item for a
million baskets — whereas a conditional bitset costs ``count(r) / 8`` bytes and only for the
items that survive there, so memory stays bounded by the largest conditional database.

Inside a conditional database the search is the classic Eclat recursion, but a node handles
all its children at once: the support of every pair of sibling extensions is one 2-D AND plus
``np.bitwise_count`` over a block of rows, and Python only recurses into children with at
least two frequent extensions. The number of numpy calls therefore grows with the number of
inner nodes of the itemset tree, not with the number of candidates.
"""

from __future__ import annotations

import numpy as np

from crmlens.basket.ranked import RankedBaskets, gather_prefixes

# Largest block (in uint64 words) of the sibling-pair AND; bounds the scratch memory at 32 MiB.
_BLOCK_WORDS = 1 << 22
# Largest boolean scratch matrix (bytes) used to build a bitset matrix with np.packbits.
_DENSE_CELLS = 1 << 24

Chunk = tuple[tuple[int, ...], np.ndarray, np.ndarray]


def eclat_ranked(data: RankedBaskets, min_count: int, max_len: int) -> list[Chunk]:
    """Frequent itemsets of length >= 2, as chunks ``(prefix, extension ranks, counts)``.

    Each chunk stands for the itemsets ``prefix + (e,)`` with their counts; ranks, not item
    codes. Singletons are left to the caller (they are ``data.counts``).
    """
    out: list[Chunk] = []
    if max_len < 2 or data.n_frequent < 2:
        return out
    rows = data.rows()
    # Vertical index: the entries of each rank, baskets in ascending order.
    by_rank = np.argsort(data.ranks, kind="stable")
    rank_ptr = np.zeros(data.n_frequent + 1, dtype=np.int64)
    np.cumsum(np.bincount(data.ranks, minlength=data.n_frequent), out=rank_ptr[1:])
    for r in range(1, data.n_frequent):
        entries = by_rank[rank_ptr[r]:rank_ptr[r + 1]]
        tids = rows[entries]
        # The more frequent items of the baskets holding r: everything before r in each row.
        items, local_tid = gather_prefixes(data.indptr, data.ranks, entries, tids)
        counts = np.bincount(items, minlength=r)
        ext = np.flatnonzero(counts >= min_count)
        if len(ext) == 0:
            continue
        out.append(((r,), ext, counts[ext]))
        if max_len < 3 or len(ext) < 2:
            continue
        row_of = np.full(r, -1, dtype=np.int64)
        row_of[ext] = np.arange(len(ext))
        local_row = row_of[items]
        keep = local_row >= 0
        bits = _bitsets(local_row[keep], local_tid[keep], len(ext), len(tids))
        _grow((r,), ext, bits, 2, min_count, max_len, out)
    return out


def _bitsets(row: np.ndarray, tid: np.ndarray, n_rows: int, n_tids: int) -> np.ndarray:
    """A ``(n_rows, ceil(n_tids / 64))`` uint64 bitset matrix with bit ``tid`` set in ``row``."""
    words = (n_tids + 63) // 64
    if n_rows * words * 64 <= _DENSE_CELLS:
        # a small boolean scratch matrix packed by numpy beats a scattered bitwise_or.at
        flags = np.zeros((n_rows, words * 64), dtype=bool)
        flags[row, tid] = True
        return np.packbits(flags, axis=1, bitorder="little").view(np.uint64)
    bits = np.zeros(n_rows * words, dtype=np.uint64)
    np.bitwise_or.at(bits, row * words + (tid >> 6),
                     np.left_shift(np.uint64(1), (tid & 63).astype(np.uint64)))
    return bits.reshape(n_rows, words)


def _pair_counts(bits: np.ndarray) -> np.ndarray:
    """Support of every pair of rows of ``bits`` (an ``m x m`` matrix; the diagonal is junk)."""
    m, words = bits.shape
    counts = np.empty((m, m), dtype=np.int64)
    block = max(1, _BLOCK_WORDS // max(1, m * words))
    for a in range(0, m, block):
        both = bits[a:a + block, None, :] & bits[None, :, :]
        counts[a:a + block] = np.bitwise_count(both).sum(axis=2, dtype=np.int64)
    return counts


def _grow(prefix: tuple[int, ...], ext: np.ndarray, bits: np.ndarray, length: int,
          min_count: int, max_len: int, out: list[Chunk]) -> None:
    """Extend ``prefix + (ext[k],)`` (itemsets of ``length``) by their later siblings."""
    counts = _pair_counts(bits)
    frequent = np.triu(counts >= min_count, 1)
    heads, tails = np.nonzero(frequent)
    if len(heads) == 0:
        return
    bounds = np.flatnonzero(np.diff(heads)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(heads)]))
    deeper = length + 1 < max_len
    for s, e in zip(starts.tolist(), ends.tolist()):
        k = int(heads[s])
        js = tails[s:e]
        child_prefix = prefix + (int(ext[k]),)
        out.append((child_prefix, ext[js], counts[k, js]))
        if deeper and len(js) >= 2:
            _grow(child_prefix, ext[js], bits[js] & bits[k], length + 1, min_count, max_len, out)
