"""Frequent items recoded by rank: the common first step of every miner.

Items below the support threshold can never be part of a frequent itemset, so they are removed
once, up front. The rest are renumbered by descending count (rank 0 = most frequent, ties by
item code) and every basket's ranks are sorted, so "the items before ``r`` in a basket" are
exactly the more frequent ones — the prefix path of FP-Growth and the extension set of Eclat.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np

from crmlens.basket.data import Baskets


@dataclass(frozen=True)
class RankedBaskets:
    """Baskets restricted to frequent items, coded by rank (CSR)."""

    indptr: np.ndarray      # int64, per basket (baskets with no frequent item kept, empty)
    ranks: np.ndarray       # int32, sorted within each basket
    item_of_rank: np.ndarray  # int32 item code of each rank
    counts: np.ndarray      # int64 baskets containing each rank (descending)
    n_baskets: int

    @property
    def n_frequent(self) -> int:
        return len(self.item_of_rank)

    def rows(self) -> np.ndarray:
        """Basket index of every entry of ``ranks``."""
        return np.repeat(np.arange(self.n_baskets, dtype=np.int64), np.diff(self.indptr))


def rank_frequent_items(baskets: Baskets, min_count: int) -> RankedBaskets:
    """Drop infrequent items and recode the rest by descending count."""
    counts = np.bincount(baskets.indices, minlength=baskets.n_items).astype(np.int64)
    frequent = np.flatnonzero(counts >= min_count)
    order = frequent[np.lexsort((frequent, -counts[frequent]))]
    rank = np.full(baskets.n_items, -1, dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    entry_rank = rank[baskets.indices]
    keep = entry_rank >= 0
    rows = np.repeat(np.arange(baskets.n_baskets, dtype=np.int64), np.diff(baskets.indptr))
    rows, entry_rank = rows[keep], entry_rank[keep]
    # Sort ranks within each basket: sort a combined key (rows are already grouped, keys are
    # unique) and take the rank back out of it; a value sort is faster than an argsort + gather.
    width = max(len(order), 1)
    key = rows * width + entry_rank
    key.sort()
    entry_rank = key - rows * width
    indptr = np.zeros(baskets.n_baskets + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=baskets.n_baskets), out=indptr[1:])
    return RankedBaskets(indptr=indptr, ranks=entry_rank.astype(np.int32),
                         item_of_rank=order.astype(np.int32), counts=counts[order],
                         n_baskets=baskets.n_baskets)


def gather_prefixes(indptr: np.ndarray, ranks: np.ndarray, ends: np.ndarray,
                    rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entries before position ``ends[k]`` in basket ``rows[k]``, for every ``k`` at once.

    Returns the gathered ranks and, for each, the index ``k`` it came from.
    """
    starts = indptr[rows]
    lengths = ends - starts
    total = int(lengths.sum())
    n = len(rows)
    # int32 positions when they fit: half the memory traffic of the gather
    index = np.int32 if len(ranks) < 2**31 and total < 2**31 else np.int64
    owner = np.repeat(np.arange(n, dtype=index), lengths)
    # position = start of the owner's row + offset inside the run: one repeat, one add
    shift = (starts - (np.cumsum(lengths) - lengths)).astype(index)
    positions = np.arange(total, dtype=index)
    positions += np.repeat(shift, lengths)
    return ranks[positions], owner


def decode_chunks(item_of_rank: np.ndarray, single_counts: np.ndarray,
                  chunks: list) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Item-code tuples in canonical order (length, then codes) from the miners' rank chunks.

    A chunk ``(prefix, extension ranks, counts)`` stands for the itemsets ``prefix + (e,)``; a
    block chunk ``(prefixes, sizes, extension ranks, counts)`` holds many prefixes at once (a
    ``(g, length)`` array; prefix ``i`` owns the next ``sizes[i]`` extensions). The work is
    done on one 2-D array per itemset length (decode, sort each row, sort the rows) and the
    tuples are made by one ``map(tuple, ...)`` per length: millions of itemsets would otherwise
    cost a Python ``sorted`` per itemset plus a keyed sort of all of them.
    """
    codes = np.asarray(item_of_rank, dtype=np.int64)
    order = np.argsort(codes, kind="stable")  # singletons are rank-ordered; canonical is code
    items: list[tuple[int, ...]] = [(c,) for c in codes[order].tolist()]
    counts = [np.asarray(single_counts, dtype=np.int64)[order]]
    singles: dict[int, list] = {}
    blocks: dict[int, list] = {}
    for chunk in chunks:
        if len(chunk) == 4:
            blocks.setdefault(chunk[0].shape[1], []).append(chunk)
        else:
            singles.setdefault(len(chunk[0]), []).append(chunk)
    for length in sorted(set(singles) | set(blocks)):
        prefixes, sizes, exts, cnts = [], [], [], []
        if length in singles:
            heads, ext, cnt = zip(*singles[length])
            prefixes.append(np.array(heads, dtype=np.int64).reshape(len(heads), length))
            sizes.append(np.fromiter(map(len, ext), dtype=np.int64, count=len(ext)))
            exts.extend(ext)
            cnts.extend(cnt)
        for block in blocks.get(length, ()):
            prefixes.append(block[0])
            sizes.append(block[1])
            exts.append(block[2])
            cnts.append(block[3])
        sizes_all = np.concatenate(sizes)
        ranks = np.empty((int(sizes_all.sum()), length + 1), dtype=np.int64)
        ranks[:, :length] = np.repeat(np.concatenate(prefixes), sizes_all, axis=0)
        ranks[:, length] = np.concatenate(exts)
        cnt = np.concatenate(cnts).astype(np.int64, copy=False)
        rows = np.sort(codes[ranks], axis=1)
        order = np.lexsort(rows.T[::-1])
        # Tuples of ints hold no cycles: pausing the cyclic collector while millions of them
        # are made saves its repeated traversals of everything alive (half the decode time).
        collecting = gc.isenabled()
        gc.disable()
        try:
            items.extend(map(tuple, rows[order].tolist()))
        finally:
            if collecting:
                gc.enable()
        counts.append(cnt[order])
    return items, np.concatenate(counts)
